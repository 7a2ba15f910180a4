"""The report's figures: one function per figure, each returning a matplotlib Figure.

Each takes the statistics API's typed results (:mod:`mtnet.stats.results`) or the rows of
a workflow TSV, and ``synthetic``: when True the figure carries a visible "SYNTHETIC DATA"
banner. Plotting only: every number drawn was computed by :mod:`mtnet.stats`. The caller
saves (:func:`save_svg`, :func:`save_png`, :func:`save_figure`); SVG output is
byte-for-byte reproducible (fixed ``svg.hashsalt``, no date).

Figures: :func:`roc_figure` (paper Fig. 4A-B), :func:`calibration_figure` (Fig. 4C-D),
:func:`decision_curve_figure` (Fig. 4E), :func:`km_figure` (Fig. 6, S3),
:func:`forest_figure` (Fig. S2), :func:`ceilings_figure` (synthetic cohort: model AUCs
against the Bayes-optimal ceilings), :func:`training_curves_figure` (per-epoch log).
Captions: :mod:`mtnet.report.captions`.
"""

from __future__ import annotations

import functools
import io
import textwrap
from collections.abc import Mapping
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from mtnet.errors import InputError
from mtnet.report.formatting import (
    DASH,
    ENDPOINT_LABELS,
    SYNTHETIC_BANNER,
    fmt_auc,
    fmt_ci,
    fmt_count,
    fmt_days,
    fmt_decimal,
    fmt_hr,
    display_order,
    level_label,
    missing,
    p_equals,
    variable_label,
)
from mtnet.report.inputs import (
    INFORMATION_SET_NAMES,
    frame,
    information_set,
    read_ceilings,
)
from mtnet.stats.results import AUCResult, CalibrationResult, CoxResult, KMResult

SVG_HASHSALT = "mtnet-report"
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.labelsize": 8.5,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": SVG_HASHSALT,
}
# Okabe-Ito colours: one per model of the paper, the same in every figure.
MODEL_COLORS = {
    "Model-CR-DR": "#D55E00",
    "Model-CR": "#0072B2",
    "Model-DR": "#009E73",
    "Model-NoSeg-CR-DR": "#CC79A7",
    "Model-Logistic-CR-DR": "#E69F00",
    "Model-Radiomics": "#56B4E9",
    "Model-Clinical-LR": "#555555",
}
INFO_COLORS = {"clinical": "#0072B2", "image": "#009E73", "both": "#D55E00", None: "#999999"}
GROUP_COLORS = {"low": "#0072B2", "high": "#D55E00"}
CYCLE = ["#000000", "#882255", "#44AA99", "#999933", "#AA4499", "#332288"]
LINE_COLORS = ["#0072B2", "#E69F00", "#CC79A7", "#009E73"]
TRAINING_COLUMNS = [
    "epoch",
    "lr",
    "train_loss",
    "bce",
    "seg_loss",
    "seg_dice",
    "inner_auc",
    "inner_loss",
]
SUBGROUP_COLUMNS = ["factor", "row", "level", "n", "n_events", "auc", "ci_low", "ci_high", "p"]


# ------------------------------------------------------------------------------ common


def model_color(model: str, index: int) -> str:
    return MODEL_COLORS.get(model, CYCLE[index % len(CYCLE)])


def _new_figure(
    width: float, height: float, synthetic: bool, suptitle: str | None = None
) -> Figure:
    """A Figure with constrained layout below a reserved top strip: the banner when
    ``synthetic``, then ``suptitle`` (placed by hand: constrained layout would put an
    automatic suptitle on the banner)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    top = 0.0  # inches reserved at the top
    if synthetic:
        fig.text(
            0.5,
            1 - 0.04 / height,
            SYNTHETIC_BANNER,
            ha="center",
            va="top",
            fontsize=9,
            fontweight="bold",
            color="white",
            bbox={"boxstyle": "square,pad=0.35", "facecolor": "#B22222", "edgecolor": "none"},
            gid="synthetic-banner",
        )
        top += 0.34
    if suptitle:
        fig.text(
            0.5,
            1 - (top + 0.05) / height,
            suptitle,
            ha="center",
            va="top",
            fontsize=9.5,
            gid="suptitle",
        )
        top += 0.26 + 0.16 * suptitle.count("\n")
    if top:
        fig.get_layout_engine().set(rect=(0, 0, 1, 1 - top / height))
    return fig


def _styled(func):
    """Build the figure under the report's rcParams (fonts and sizes are fixed at creation)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def _need(results: Mapping, what: str, center=None):
    if not results:
        raise InputError(f"no {what} to draw", center=center)


@_styled
def not_drawn(title: str, reason: str, *, synthetic: bool) -> Figure:
    """The figure in place of one that the data cannot support: its title and why (the
    analyses' ``reason``), so that the report says what is missing instead of omitting it."""
    fig = _new_figure(5.2, 2.4, synthetic, title)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(
        0.5,
        0.5,
        "Not computed: " + textwrap.fill(str(reason), 70),
        ha="center",
        va="center",
        fontsize=8,
        color="0.25",
        gid="not-computed",
    )
    return fig


# -------------------------------------------------------------------------------- saving


def save_svg(fig: Figure, path) -> Path:
    """SVG without a date and with a fixed hash salt: the same figure gives the same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(svg_bytes(fig))
    return path


def svg_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with mpl.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def save_png(fig: Figure, path, dpi: int = 300) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path


def save_figure(fig: Figure, stem, dpi: int = 300) -> dict[str, Path]:
    """``stem``.svg and ``stem``.png (300 dpi)."""
    stem = Path(stem)
    return {
        "svg": save_svg(fig, stem.with_suffix(".svg")),
        "png": save_png(fig, stem.with_suffix(".png"), dpi),
    }


# ------------------------------------------------------------------------------ Fig. 4A-B


@_styled
def roc_figure(
    results: Mapping[str, AUCResult], *, center: str, synthetic: bool, title: str | None = None
) -> Figure:
    """ROC curves of several models on one center (paper Fig. 4A-B): the empirical curve of
    each model, its pointwise bootstrap band where ``auc_ci`` computed one, and AUC [95% CI]
    (DeLong) in the legend. ``results``: model -> :class:`AUCResult` (legend order)."""
    _need(results, "ROC curves", center)
    fig = _new_figure(4.6, 4.8, synthetic)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls=":", lw=0.8, color="0.6")
    boots = set()
    for i, (model, res) in enumerate(results.items()):
        if res.roc is None or res.roc.empty:
            raise InputError(
                f"{model}: the AUC result has no ROC points",
                center=center,
                fix="compute it with mtnet.stats.auc_ci",
            )
        color = model_color(model, i)
        if res.band is not None and not res.band.empty:
            b = res.band.sort_values("fpr")
            ax.fill_between(b["fpr"], b["tpr_low"], b["tpr_high"], color=color, alpha=0.15, lw=0)
            boots.add(res.band.attrs.get("boot_n"))
        ax.plot(
            res.roc["fpr"],
            res.roc["tpr"],
            color=color,
            lw=1.5,
            label=f"{model}: AUC {fmt_ci(res.auc, res.ci_low, res.ci_high)}",
            gid=f"roc:{model}",
        )
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 − specificity", ylabel="Sensitivity")
    ax.set_aspect("equal")
    ax.set_title(title or f"ROC curves — {center}")
    legend_title = "AUC [95% CI, DeLong]"
    if boots:
        known = sorted(b for b in boots if b)
        count = f" ({', '.join(str(b) for b in known)} resamples)" if known else ""
        legend_title += f"\nshaded: pointwise 95% bootstrap band{count}"
    ax.legend(loc="lower right", title=legend_title, title_fontsize=7)
    return fig


# ------------------------------------------------------------------------------ Fig. 4C-D


@_styled
def calibration_figure(
    results: Mapping[str, CalibrationResult],
    *,
    center: str,
    synthetic: bool,
    title: str | None = None,
) -> Figure:
    """Calibration plot (paper Fig. 4C-D): the ideal line, each model's quantile bins
    (mean predicted vs observed proportion with its 95% Wilson interval), the lowess smooth
    (as rms::val.prob) and, below, the histogram of the predicted risks."""
    _need(results, "calibration curves", center)
    fig = _new_figure(4.8, 5.8, synthetic)
    grid = fig.add_gridspec(2, 1, height_ratios=(4, 1))
    ax = fig.add_subplot(grid[0])
    hx = fig.add_subplot(grid[1], sharex=ax)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.5", label="Ideal")
    edges = np.linspace(0, 1, 41)
    for i, (model, c) in enumerate(results.items()):
        color = model_color(model, i)
        cur = c.curve
        if cur is None or cur.empty or "observed_low" not in cur:
            raise InputError(
                f"{model}: the calibration result has no binned curve with intervals",
                center=center,
                fix="compute it with mtnet.stats.calibration",
            )
        # clipped at 0: a bound equals the proportion up to rounding at 0 or n events
        err = np.clip(
            np.vstack(
                [cur["observed"] - cur["observed_low"], cur["observed_high"] - cur["observed"]]
            ),
            0,
            None,
        )
        ax.errorbar(
            cur["mean_predicted"],
            cur["observed"],
            yerr=err,
            fmt="o",
            ms=3.5,
            lw=0.8,
            capsize=2,
            color=color,
            label=(
                f"{model}: intercept {fmt_decimal(c.intercept, 2)}, slope "
                f"{fmt_decimal(c.slope, 2)}, Brier {fmt_decimal(c.brier, 3)}"
            ),
            gid=f"bins:{model}",
        )
        if c.smooth is not None and not c.smooth.empty:
            ax.plot(
                c.smooth["predicted"],
                c.smooth["observed"],
                color=color,
                lw=1.1,
                gid=f"smooth:{model}",
            )
            hx.hist(c.smooth["predicted"], bins=edges, histtype="step", color=color, lw=1)
    ax.set(xlim=(0, 1), ylim=(-0.03, 1.03), ylabel="Observed proportion")
    ax.set_title(title or f"Calibration — {center}")
    ax.legend(loc="upper left", fontsize=7)
    ax.tick_params(labelbottom=False)
    hx.set(xlabel="Predicted risk of MVI", ylabel="Patients")
    return fig


# -------------------------------------------------------------------------------- Fig. 4E


def curves_by_model(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """decision_curve.tsv rows -> model -> its curve (rows with a reason left out)."""
    df = frame(rows, ["model", "threshold", "net_benefit", "treat_all", "treat_none"])
    if "reason" in df:
        df = df[df["reason"].fillna("").astype(str) == ""]
    return {m: g.reset_index(drop=True) for m, g in df.groupby("model", sort=False)}


@_styled
def decision_curve_figure(
    curves, *, center: str, synthetic: bool, title: str | None = None
) -> Figure:
    """Decision curve (paper Fig. 4E): net benefit of each model against the threshold
    probability, with treat-all and treat-none. ``curves``: model -> the DataFrame of
    :func:`mtnet.stats.net_benefit`, or the rows of decision_curve.tsv."""
    if isinstance(curves, pd.DataFrame) or not isinstance(curves, Mapping):
        curves = curves_by_model(curves)
    _need(curves, "decision curves", center)
    fig = _new_figure(5.2, 4.0, synthetic)
    ax = fig.add_subplot()
    top = 0.0
    treat_all = []
    for i, (model, c) in enumerate(curves.items()):
        c = c.sort_values("threshold")
        ax.plot(
            c["threshold"],
            c["net_benefit"],
            color=model_color(model, i),
            lw=1.4,
            label=model,
            gid=f"nb:{model}",
        )
        top = max(top, float(np.nanmax(c["net_benefit"])), float(np.nanmax(c["treat_all"])))
        if not any(
            len(t) == len(c) and np.allclose(t["treat_all"], c["treat_all"]) for t in treat_all
        ):
            treat_all.append(c)
    for j, c in enumerate(treat_all):
        label = "Treat all" if len(treat_all) == 1 else f"Treat all ({list(curves)[j]})"
        ax.plot(c["threshold"], c["treat_all"], color="0.45", lw=1, ls="--", label=label)
    first = next(iter(curves.values()))
    ax.plot(first["threshold"], first["treat_none"], color="0.1", lw=1, ls=":", label="Treat none")
    top = max(top, 0.01)
    ax.set_ylim(-0.25 * top, 1.15 * top)
    ax.set_xlim(float(first["threshold"].min()), float(first["threshold"].max()))
    ax.set(xlabel="Threshold probability", ylabel="Net benefit")
    ax.set_title(title or f"Decision curve — {center}")
    ax.legend(loc="upper right")
    return fig


# ------------------------------------------------------------------------- Fig. 6 and S3


def _group_order(groups) -> list[str]:
    known = [g for g in ("low", "high") if g in groups]
    return known + [g for g in groups if g not in known]


@_styled
def km_figure(
    km: KMResult,
    *,
    endpoint: str,
    center: str,
    synthetic: bool,
    cox: CoxResult | None = None,
    labels: Mapping[str, str] | None = None,
    hr_label: str = "HR (low vs high)",
    hr_note: str | None = None,
    title: str | None = None,
) -> Figure:
    """Kaplan-Meier curves of two (or more) groups (paper Fig. 6 by risk group, S3 by
    H-score group) with their 95% log-log bands, censoring ticks, the numbers at risk under
    the axis, the log-rank p and, with ``cox``, the hazard ratio [95% CI] on the plot.
    ``endpoint``: ``time_to_mvi`` or ``os``; ``labels``: group -> legend text (e.g.
    ``{"low": "risk ≤ 0.157"}``); ``hr_label`` names the HR's direction; ``hr_note``: why
    there is no hazard ratio (printed in its place when ``cox`` is None)."""
    if km.curves is None or km.curves.empty:
        raise InputError(
            "the Kaplan-Meier result has no curves",
            center=center,
            fix="compute it with mtnet.stats.km_logrank",
        )
    labels = dict(labels or {})
    groups = _group_order(list(km.groups["group"]))
    fig = _new_figure(
        5.6,
        5.2,
        synthetic,
        title or f"{ENDPOINT_LABELS.get(endpoint, endpoint)} — {center}",
    )
    grid = fig.add_gridspec(2, 1, height_ratios=(4, 0.35 + 0.3 * len(groups)))
    ax = fig.add_subplot(grid[0])
    tx = fig.add_subplot(grid[1], sharex=ax)
    info = km.groups.set_index("group")
    for i, g in enumerate(groups):
        cur = km.curves[km.curves["group"] == g]
        color = GROUP_COLORS.get(g, CYCLE[i % len(CYCLE)])
        text = labels.get(g, g)
        ax.step(
            cur["time"],
            cur["survival"],
            where="post",
            color=color,
            lw=1.5,
            label=f"{text} (n = {fmt_count(info.loc[g, 'n'])}, "
            f"events {fmt_count(info.loc[g, 'events'])})",
            gid=f"km:{g}",
        )
        ax.fill_between(
            cur["time"], cur["lower"], cur["upper"], step="post", color=color, alpha=0.13, lw=0
        )
        cens = cur[cur["n_censor"] > 0]
        ax.plot(cens["time"], cens["survival"], ls="none", marker="|", ms=5, color=color)
    tests = [f"Log-rank {p_equals(km.p)}"]
    if cox is not None:
        tests.append(f"{hr_label} {fmt_hr(cox.hr, cox.ci_low, cox.ci_high)}, {p_equals(cox.p)}")
    elif hr_note:
        tests.append(f"no HR: {hr_note}")
    medians = [f"{labels.get(g, g)} {_median_text(info.loc[g, 'median'])}" for g in groups]
    # above the data, never on a curve
    ax.set_title(
        "; ".join(tests) + "\nMedian: " + " vs ".join(medians),
        loc="left",
        fontsize=7.5,
        gid="km-statistics",
    )
    ylabel = {"time_to_mvi": "Freedom from MVI", "os": "Overall survival"}.get(endpoint, "Survival")
    times = sorted(set(km.at_risk["time"]))
    right = max(float(km.curves["time"].max()), max(times)) * 1.02
    ax.set(ylim=(0, 1.03), xlim=(0, right), ylabel=ylabel)
    ax.set_xticks(times)
    ax.tick_params(labelbottom=False)
    ax.legend(loc="lower left")
    # numbers at risk: one row per group, each number under its time
    for row, g in enumerate(groups):
        color = GROUP_COLORS.get(g, CYCLE[row % len(CYCLE)])
        sub = km.at_risk[km.at_risk["group"] == g]
        for _, r in sub.iterrows():
            tx.text(
                r["time"],
                row,
                str(int(r["n_risk"])),
                ha="center",
                va="center",
                fontsize=7.5,
                color=color,
                gid=f"at-risk:{g}:{r['time']:g}",
            )
    tx.set_yticks(range(len(groups)), [labels.get(g, g) for g in groups])
    for tick, g in zip(tx.get_yticklabels(), groups):
        tick.set_color(GROUP_COLORS.get(g, "0.2"))
    tx.tick_params(axis="y", length=0, pad=16)
    tx.set_ylim(len(groups) - 0.5, -0.5)
    for side_name in ("left", "top", "right"):
        tx.spines[side_name].set_visible(False)
    tx.set_xlabel("Days")
    tx.set_title("Number at risk", loc="left", fontsize=7.5)
    return fig


def _median_text(median) -> str:
    return "not reached" if missing(median) else f"{fmt_days(median)} d"


# --------------------------------------------------------------------------------- Fig. S2


@_styled
def forest_figure(
    subgroups,
    *,
    center: str,
    synthetic: bool,
    overall: tuple[float, float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Subgroup forest plot (paper Fig. S2): the best model's AUC [95% CI] within each level
    of each factor, and the p of the unpaired DeLong test between levels (on the factor's
    row for two levels, one row per pair for more). ``subgroups``: the rows of
    subgroups.tsv (path or DataFrame); ``overall``: (AUC, low, high) of the whole center,
    drawn as a dashed reference line."""
    df = frame(subgroups, SUBGROUP_COLUMNS)
    if df.empty:
        raise InputError("no subgroup rows to draw", center=center)
    df = df.assign(
        reason=df["reason"].fillna("").astype(str) if "reason" in df else "",
    )
    model = str(df["model"].iloc[0]) if "model" in df else ""
    rows = _forest_rows(df)
    color = model_color(model, 0)
    fig = _new_figure(
        7.2,
        0.9 + 0.19 * (len(rows) + 1) + (0.3 if synthetic else 0),
        synthetic,
        title or " — ".join(x for x in ("Subgroups", model, center) if x),
    )
    ax, counts, text = fig.subplots(
        1, 3, sharey=True, gridspec_kw={"width_ratios": (1.0, 0.32, 1.05)}
    )
    for y, r in enumerate(rows):
        if r["kind"] == "level" and not missing(r["auc"]):
            ax.errorbar(
                r["auc"],
                y,
                xerr=[[r["auc"] - r["lo"]], [r["hi"] - r["auc"]]],
                fmt="s",
                ms=4,
                lw=1,
                capsize=2,
                color=color,
                gid=f"subgroup:{r['factor']}:{r['level']}",
            )
        if r.get("counts"):
            counts.text(0.5, y, r["counts"], ha="center", va="center", fontsize=7)
        if r.get("text"):
            text.text(
                0.0,
                y,
                r["text"],
                ha="left",
                va="center",
                fontsize=7,
                style="italic" if r["kind"] != "level" else "normal",
                gid=r.get("gid"),
            )
    for a, head in ((counts, "n (events)"), (text, "AUC [95% CI] / DeLong p")):
        a.text(
            0.5 if a is counts else 0.0,
            -1,
            head,
            ha="center" if a is counts else "left",
            va="center",
            fontsize=7,
            fontweight="bold",
        )
        a.set_xlim(0, 1)
        a.axis("off")
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows])
    for tick, r in zip(ax.get_yticklabels(), rows):
        if r["kind"] == "factor":
            tick.set_fontweight("bold")
        elif r["kind"] == "comparison":
            tick.set_style("italic")
    ax.set_ylim(len(rows) - 0.4, -1.6)
    ax.tick_params(axis="y", length=0)
    lows = [r["lo"] for r in rows if r["kind"] == "level" and not missing(r.get("lo"))]
    ax.set_xlim(min([0.4] + [np.floor(min(lows) * 10) / 10] if lows else [0.4]), 1.0)
    ax.axvline(0.5, ls=":", lw=0.8, color="0.6")
    xlabel = "AUC"
    if overall is not None:
        ax.axvline(overall[0], ls="--", lw=0.9, color=color, gid="overall-auc")
        xlabel += f" (dashed: all patients, {fmt_ci(*overall)})"
    ax.set_xlabel(xlabel)
    return fig


def _forest_rows(df: pd.DataFrame) -> list[dict]:
    """Rows of the forest plot: per factor a header (with the p when two levels), its
    levels, then one row per pair of levels when more than two."""
    rows = []
    for factor in dict.fromkeys(df["factor"]):
        f = df[df["factor"] == factor]
        comps = f[f["row"] == "comparison"]
        head = {"kind": "factor", "label": variable_label(factor), "factor": factor}
        if len(comps) == 1:
            c = comps.iloc[0]
            head.update(text=_p_text(c), gid=f"subgroup-p:{factor}:{c['level']}")
        rows.append(head)
        levels = f[f["row"] == "level"]
        levels = levels.iloc[display_order(factor, list(levels["level"].astype(str)))]
        for _, lv in levels.iterrows():
            has = not missing(lv["auc"])
            rows.append(
                {
                    "kind": "level",
                    "factor": factor,
                    "level": str(lv["level"]),
                    "label": f"  {level_label(factor, lv['level'])}",
                    "auc": lv["auc"],
                    "lo": lv["ci_low"],
                    "hi": lv["ci_high"],
                    "counts": f"{fmt_count(lv['n'])} ({fmt_count(lv['n_events'])})",
                    "text": (
                        fmt_ci(lv["auc"], lv["ci_low"], lv["ci_high"])
                        if has
                        else f"{DASH} ({lv['reason']})"
                    ),
                }
            )
        if len(comps) > 1:
            for _, c in comps.iterrows():
                a, _, b = str(c["level"]).partition(" vs ")
                rows.append(
                    {
                        "kind": "comparison",
                        "factor": factor,
                        "label": f"  {level_label(factor, a)} vs {level_label(factor, b)}",
                        "text": _p_text(c),
                        "gid": f"subgroup-p:{factor}:{c['level']}",
                    }
                )
    return rows


def _p_text(row) -> str:
    if missing(row["p"]):
        return f"p {DASH} ({row['reason']})" if row.get("reason") else f"p {DASH}"
    return p_equals(row["p"])


# ------------------------------------------------------------------ synthetic: ceilings


@_styled
def ceilings_figure(
    discrimination,
    ceilings,
    *,
    center: str,
    synthetic: bool,
    information_sets: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """Each model's AUC [95% CI] on a synthetic center against the Bayes-optimal ceilings of
    the information sets (truth/ceilings.json: auc.clinical, auc.image, auc.both) drawn as
    horizontal lines; points coloured by the model's information set. ``discrimination``:
    discrimination.tsv rows (path or DataFrame); ``ceilings``: the JSON path or dict;
    ``information_sets``: model -> clinical|image|both (default: the paper's models)."""
    df = frame(discrimination, ["model", "auc", "ci_low", "ci_high"])
    if "center" in df and (df["center"].astype(str) == center).any():
        df = df[df["center"].astype(str) == center]
    if df.empty:
        raise InputError("no discrimination rows to draw", center=center)
    record = read_ceilings(ceilings)
    models = list(dict.fromkeys(df["model"]))
    fig = _new_figure(max(4.6, 1.8 + 0.75 * len(models)), 4.4, synthetic)
    ax = fig.add_subplot()
    for info in INFORMATION_SET_NAMES:
        value = float(record["auc"][info])
        ax.axhline(
            value,
            ls="--",
            lw=1,
            color=INFO_COLORS[info],
            label=f"Bayes-optimal ceiling, {info}: {fmt_auc(value)}",
            gid=f"ceiling:{info}",
        )
    seen = set()
    lows = [float(record["auc"][k]) for k in INFORMATION_SET_NAMES]
    for x, model in enumerate(models):
        row = df[df["model"] == model].iloc[0]
        info = information_set(model, information_sets)
        color = INFO_COLORS.get(info, INFO_COLORS[None])
        if missing(row["auc"]):
            ax.text(x, 0.52, "n/a", ha="center", va="bottom", fontsize=7, color="0.4")
            continue
        label = f"{info} information" if info else "information set not known"
        ax.errorbar(
            x,
            row["auc"],
            yerr=[[row["auc"] - row["ci_low"]], [row["ci_high"] - row["auc"]]],
            fmt="o",
            ms=5,
            lw=1.2,
            capsize=3,
            color=color,
            label=label if label not in seen else None,
            gid=f"model-auc:{model}",
        )
        seen.add(label)
        ax.annotate(
            fmt_auc(row["auc"]),
            (x, row["auc"]),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
        lows.append(float(row["ci_low"]))
    ax.set_xticks(range(len(models)), models, rotation=25, ha="right")
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_ylim(min(0.5, min(lows) - 0.03), 1.0)
    ax.set_ylabel("AUC [95% CI]")
    ax.set_title(title or f"Model AUCs against the Bayes-optimal ceilings — {center}")
    ax.legend(loc="lower right", fontsize=7)
    return fig


# ---------------------------------------------------------------------- training curves

_TRAINING_PANELS = [
    (
        "Loss",
        {
            "train_loss": "training loss",
            "bce": "BCE (MVI)",
            "seg_loss": "segmentation loss",
            "inner_loss": "inner-split loss",
        },
    ),
    ("Segmentation Dice", {"seg_dice": "Dice (training)"}),
    ("Inner-split AUC", {"inner_auc": "AUC (inner validation)"}),
]


@_styled
def training_curves_figure(log, *, model: str, synthetic: bool, title: str | None = None) -> Figure:
    """Training curves by epoch from a per-epoch TSV log (columns epoch, lr, train_loss,
    bce, seg_loss, seg_dice, inner_auc, inner_loss, optionally seconds; any but epoch may be NA):
    the losses, the segmentation Dice and the inner-split AUC; a panel whose columns are all
    NA says "not recorded"."""
    df = frame(log, TRAINING_COLUMNS)
    epoch = pd.to_numeric(df["epoch"], errors="coerce")
    if df.empty or epoch.isna().any():
        raise InputError(
            f"the training log of {model} has {len(df)} row(s) and "
            f"{int(epoch.isna().sum())} missing epoch(s)",
            column="epoch",
            fix="write one row per epoch with its number",
        )
    # a log with the epochs' wall times (optional: the workflow's are in the job logs)
    seconds = pd.to_numeric(df["seconds"], errors="coerce") if "seconds" in df else pd.Series(dtype=float)
    extra = f", {seconds.sum() / 60:.1f} min" if seconds.notna().any() else ""
    fig = _new_figure(9.6, 3.5, synthetic, title or f"Training — {model} ({len(df)} epochs{extra})")
    axes = fig.subplots(1, 3)
    for ax, (name, columns) in zip(axes, _TRAINING_PANELS):
        drawn = False
        for i, (col, text) in enumerate(columns.items()):
            v = pd.to_numeric(df[col], errors="coerce")
            ok = v.notna().to_numpy()
            if not ok.any():
                continue
            ax.plot(
                epoch[ok],
                v[ok],
                marker="o" if ok.sum() < 30 else None,
                ms=2.5,
                lw=1.2,
                color=LINE_COLORS[i % len(LINE_COLORS)],
                label=text,
                gid=f"train:{col}",
            )
            drawn = True
        if drawn:
            ax.legend(loc="best", fontsize=7)
        else:
            ax.text(
                0.5,
                0.5,
                "not recorded",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="0.45",
                gid=f"not-recorded:{name}",
            )
        if name != "Loss":
            ax.set_ylim(0, 1.02)
        ax.set(title=name, xlabel="Epoch")
    return fig


# ------------------------------------------------------------- penalised fits: the path

# the tuning parameter of each fit path a model family writes, and how it reads
FIT_PATH_PARAMETERS = {
    "penalty": "L2 penalty λ (log scale)",
    "C": "inverse L1 penalty C (log scale)",
}
FIT_PATH_METRICS = {
    "cv_loglik": "cross-validated log-likelihood",
    "cv_auc": "cross-validated AUC",
    "cv_log_loss": "cross-validated log loss",
}


@_styled
def fit_path_figure(
    log,
    *,
    model: str,
    synthetic: bool,
    chosen: float | None = None,
    title: str | None = None,
) -> Figure:
    """The tuning path of a penalised fit from its training log (Model-Clinical-LR:
    penalty, cv_loglik; the radiomics models: C, cv_auc, cv_log_loss): one panel per
    cross-validated metric against the tuning parameter (log scale), the ``chosen`` value
    marked. A log without rows (a maximum-likelihood fit needed no penalty) says so."""
    df = frame(log)
    parameter = next((c for c in FIT_PATH_PARAMETERS if c in df.columns), None)
    metrics = [c for c in FIT_PATH_METRICS if c in df.columns]
    if parameter is None or not metrics:
        raise InputError(
            f"the training log of {model} has columns {list(df.columns)}: no fit path",
            fix=f"a path has one of {list(FIT_PATH_PARAMETERS)} and one of "
            f"{list(FIT_PATH_METRICS)}",
        )
    fig = _new_figure(
        max(4.0, 3.3 * len(metrics)),
        3.4,
        synthetic,
        title or f"Tuning path — {model} ({len(df)} values)",
    )
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    x = pd.to_numeric(df[parameter], errors="coerce")
    for i, (ax, col) in enumerate(zip(axes, metrics)):
        y = pd.to_numeric(df[col], errors="coerce")
        ok = (x > 0) & y.notna()
        if not ok.any():
            ax.text(
                0.5,
                0.5,
                "no penalty was tuned\n(maximum-likelihood fit)" if df.empty else "not recorded",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="0.45",
                gid=f"not-recorded:{col}",
            )
        else:
            order = np.argsort(x[ok].to_numpy())
            ax.plot(
                x[ok].to_numpy()[order],
                y[ok].to_numpy()[order],
                marker="o",
                ms=3,
                lw=1.2,
                color=LINE_COLORS[i % len(LINE_COLORS)],
                gid=f"path:{col}",
            )
            ax.set_xscale("log")
            if chosen is not None and np.isfinite(chosen) and chosen > 0:
                ax.axvline(chosen, ls="--", lw=0.9, color="0.3", gid="chosen")
                ax.annotate(
                    f"chosen {chosen:.3g}",
                    (chosen, 1),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -3),
                    textcoords="offset points",
                    va="top",
                    fontsize=7,
                )
        ax.set(xlabel=FIT_PATH_PARAMETERS[parameter], ylabel=FIT_PATH_METRICS[col])
    return fig
