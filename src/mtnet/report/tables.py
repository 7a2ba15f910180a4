"""Journal-formatted HTML tables from the workflow's statistics TSVs (docs/statistics.md).

Each function takes the TSV path(s) (or their DataFrames) and ``synthetic`` (a banner row
on top), and returns one small self-contained ``<table>`` with a ``<caption>`` (from
:mod:`mtnet.report.captions`), inline styles only and no JavaScript. Numbers follow
:mod:`mtnet.report.formatting`: AUC 3 decimals, ``0.812 [0.701–0.902]``, p ``< 0.001`` or
3 significant digits, counts as integers; a missing value is ``—`` with its reason as a
tooltip and a lettered footnote.

Tables: :func:`table1_html`, :func:`discrimination_html`, :func:`model_comparison_html`,
:func:`calibration_html`, :func:`risk_groups_html`.
"""

from __future__ import annotations

import html
import re
import string
from dataclasses import dataclass

import pandas as pd

from mtnet.report import captions
from mtnet.report.formatting import (
    DASH,
    EN_DASH,
    ENDPOINT_LABELS,
    SYNTHETIC_BANNER,
    fmt_auc,
    fmt_ci,
    fmt_count,
    fmt_days,
    fmt_decimal,
    fmt_hr,
    fmt_p,
    level_label,
    missing,
    variable_label,
)
from mtnet.report.inputs import frame
# the statistics' tables: their columns have one home, the stage that writes them
from mtnet.stats.analyses import COLUMNS
from mtnet.stats.table1 import TABLE1_OUTPUT

TABLE_STYLE = "border-collapse:collapse;font-family:sans-serif;font-size:0.85em;margin:0.5em 0"
RULE = "border-top:2px solid #000"
CELL = "padding:2px 8px"
BANNER_STYLE = "background:#B22222;color:#fff;font-weight:bold;text-align:center;" + CELL
TEST_NAMES = {
    "t-test": "Student's t",
    "wilcoxon": "Wilcoxon rank-sum",
    "chi-squared": "χ²",
    "fisher": "Fisher's exact",
}


@dataclass
class Cell:
    text: str
    title: str | None = None  # tooltip
    note: str | None = None  # footnote text (marker added when rendered)
    colspan: int = 1
    rowspan: int = 1
    header: bool = False
    left: bool = False
    bold: bool = False
    italic: bool = False


def _value(text: str, reason: str | None) -> Cell:
    """A formatted value; when it is missing, the reason goes to a tooltip and footnote."""
    if text == DASH:
        reason = (reason or "").strip() or None
        return Cell(DASH, title=reason, note=reason)
    return Cell(text)


class _Html:
    """Rows of cells -> a <table> with a caption, an optional banner, lettered footnotes."""

    def __init__(self, name: str, header: list[list[Cell]], *, synthetic: bool, where=None):
        self.name, self.header, self.synthetic, self.where = name, header, synthetic, where
        self.body: list[list[Cell]] = []
        self.notes: dict[str, str] = {}
        self.extra_notes: list[str] = []

    @property
    def width(self) -> int:
        return sum(c.colspan for c in self.header[-1]) + (
            0 if len(self.header) == 1 else self._first_header_rowspans()
        )

    def _first_header_rowspans(self) -> int:
        return sum(c.colspan for c in self.header[0] if c.rowspan > 1)

    def row(self, cells: list[Cell]):
        self.body.append(cells)

    def _cell(self, c: Cell, tag: str) -> str:
        attrs, style = [], [CELL]
        if c.colspan > 1:
            attrs.append(f' colspan="{c.colspan}"')
        if c.rowspan > 1:
            attrs.append(f' rowspan="{c.rowspan}"')
        style.append("text-align:left" if c.left else "text-align:right")
        if c.rowspan > 1:
            style.append("vertical-align:middle")
        if c.bold:
            style.append("font-weight:bold")
        if c.italic:
            style.append("font-style:italic")
        text = html.escape(c.text)
        if c.note:
            mark = self.notes.setdefault(c.note, string.ascii_lowercase[len(self.notes) % 26])
            text += f"<sup>{mark}</sup>"
        if c.title:
            attrs.append(f' title="{html.escape(c.title, quote=True)}"')
        return f'<{tag}{"".join(attrs)} style="{";".join(style)}">{text}</{tag}>'

    def render(self) -> str:
        width = self.width
        out = [f'<table class="mtnet-table mtnet-{self.name}" style="{TABLE_STYLE}">']
        title, rest = captions.caption_parts(self.name, synthetic=self.synthetic, where=self.where)
        out.append(
            f'<caption style="caption-side:top;text-align:left;padding-bottom:4px">'
            f"<b>{html.escape(title)}.</b> {html.escape(rest)}</caption>"
        )
        out.append(f'<thead style="{RULE};border-bottom:1px solid #000">')
        if self.synthetic:
            out.append(
                f'<tr><th colspan="{width}" class="mtnet-synthetic" style="{BANNER_STYLE}">'
                f"{html.escape(SYNTHETIC_BANNER)}</th></tr>"
            )
        for cells in self.header:
            out.append("<tr>" + "".join(self._cell(c, "th") for c in cells) + "</tr>")
        out.append("</thead>")
        out.append(f'<tbody style="border-bottom:2px solid #000">')
        for cells in self.body:
            out.append("<tr>" + "".join(self._cell(c, "td") for c in cells) + "</tr>")
        out.append("</tbody>")
        notes = [f"<sup>{m}</sup> {html.escape(t)}" for t, m in self.notes.items()]
        notes += [html.escape(t) for t in self.extra_notes]
        if notes:
            out.append(
                f'<tfoot><tr><td colspan="{width}" style="{CELL};text-align:left;'
                f'font-size:0.9em">' + "<br>".join(notes) + "</td></tr></tfoot>"
            )
        out.append("</table>")
        return "\n".join(out) + "\n"


def _heads(*names: str, left: int = 1) -> list[Cell]:
    """Header cells; the first ``left`` are left-aligned (text columns)."""
    return [Cell(n, header=True, left=(i < left)) for i, n in enumerate(names)]


def _reason(row) -> str:
    r = row.get("reason", "") if hasattr(row, "get") else ""
    return "" if missing(r) else str(r)


def _center_of(df: pd.DataFrame) -> str | None:
    if "center" in df and df["center"].notna().any():
        return ", ".join(dict.fromkeys(df["center"].astype(str)))
    return None


def _dash_range(text: str) -> str:
    """``60.1 (13.6-285.7)`` -> ``60.1 (13.6–285.7)``."""
    return re.sub(r"(\d)-(\d)", rf"\1{EN_DASH}\2", text)


# -------------------------------------------------------------------------------- Table 1

TABLE1_COLUMNS = TABLE1_OUTPUT


def table1_html(path, *, synthetic: bool) -> str:
    """Table 1 (table1.tsv): per variable the training and each external center's summary,
    the test chosen and its p; one row per level of a categorical or ordinal variable."""
    df = frame(path, TABLE1_COLUMNS)
    df = df.assign(level=df["level"].fillna("").astype(str), note=df["note"].fillna(""))
    centers = list(dict.fromkeys(df["external_center"].astype(str)))
    header = [
        [Cell("Characteristic", header=True, left=True, rowspan=2)]
        + [Cell(f"Training vs {c}", header=True, colspan=4) for c in centers],
        [Cell(h, header=True) for c in centers for h in ("Training", c, "Test", "p")],
    ]
    t = _Html("table1", header, synthetic=synthetic)
    keys = list(dict.fromkeys(zip(df["variable"], df["level"])))
    by = {c: df[df["external_center"].astype(str) == c] for c in centers}
    for variable, level in keys:
        head = level == ""
        label = variable_label(variable) if head else f"  {level_label(variable, level)}"
        cells = [Cell(label, left=True, bold=head)]
        for c in centers:
            rows = by[c][(by[c]["variable"] == variable) & (by[c]["level"] == level)]
            if rows.empty:
                cells += [_value(DASH, f"not tabulated for {c}"), Cell(""), Cell(""), Cell("")]
                continue
            r = rows.iloc[0]
            cells += [
                _value(_summary(r["train"]), r["note"]),
                _value(_summary(r["external"]), r["note"]),
            ]
            if head:
                tested = not missing(r["test"])
                note = str(r["note"])
                cells.append(
                    Cell(TEST_NAMES.get(str(r["test"]), str(r["test"])), title=note or None)
                    if tested
                    else _value(DASH, note or "not tested")
                )
                cells.append(_value(fmt_p(r["p"]), note or "not tested"))
            else:
                cells += [Cell(""), Cell("")]
        t.row(cells)
    return t.render()


def _summary(text) -> str:
    if missing(text):
        return DASH
    return _dash_range(str(text))


# ------------------------------------------------------------------------- discrimination

DISCRIMINATION_COLUMNS = COLUMNS["discrimination"]


def discrimination_html(path, *, synthetic: bool) -> str:
    """discrimination.tsv: per model n, events, AUC [95% CI], the training Youden threshold
    and the sensitivity and specificity at it."""
    df = frame(path, DISCRIMINATION_COLUMNS)
    t = _Html(
        "discrimination",
        [
            _heads(
                "Model",
                "Split",
                "n",
                "Events",
                "AUC [95% CI]",
                "Threshold",
                "Sensitivity",
                "Specificity",
                left=2,
            )
        ],
        synthetic=synthetic,
        where=_center_of(df),
    )
    for _, r in df.iterrows():
        why = _reason(r)
        no_threshold = why or "no Youden threshold on the training centers"
        t.row(
            [
                Cell(str(r["model"]), left=True),
                Cell("" if missing(r["split"]) else str(r["split"])),
                Cell(fmt_count(r["n"])),
                Cell(fmt_count(r["n_events"])),
                _value(fmt_ci(r["auc"], r["ci_low"], r["ci_high"]), why),
                _value(fmt_decimal(r["threshold"]), no_threshold),
                _value(fmt_decimal(r["sensitivity"]), no_threshold),
                _value(fmt_decimal(r["specificity"]), no_threshold),
            ]
        )
    return t.render()


# ----------------------------------------------------------------------- model comparison

DELONG_COLUMNS = COLUMNS["delong"]
NRI_IDI_COLUMNS = COLUMNS["nri_idi"]


def model_comparison_html(discrimination, delong, nri_idi, *, synthetic: bool) -> str:
    """Per model pair (delong.tsv, nri_idi.tsv) with each model's AUC [95% CI]
    (discrimination.tsv): the paired DeLong p, continuous and categorical NRI, IDI."""
    disc = frame(discrimination, ["model", "auc", "ci_low", "ci_high"])
    dl = frame(delong, DELONG_COLUMNS)
    ni = frame(nri_idi, NRI_IDI_COLUMNS)
    cuts = ni.loc[ni["measure"] == "nri_categorical", "cutoffs"].dropna().astype(str).unique()
    cat = f"NRI, categorical ({', '.join(cuts)})" if len(cuts) else "NRI, categorical"
    header = [
        [
            Cell("Model", header=True, left=True, rowspan=2),
            Cell("Comparator", header=True, left=True, rowspan=2),
            Cell("n (events)", header=True, rowspan=2),
            Cell("AUC [95% CI]", header=True, colspan=2),
            Cell("DeLong", header=True, colspan=2),
            Cell("NRI, continuous", header=True, colspan=2),
            Cell(cat, header=True, colspan=2),
            Cell("IDI", header=True, colspan=2),
        ],
        [
            Cell(h, header=True)
            for h in ("model", "comparator", "z", "p", "value", "p", "value", "p", "value", "p")
        ],
    ]
    t = _Html(
        "model_comparison", header, synthetic=synthetic, where=_center_of(dl) or _center_of(disc)
    )
    aucs = {r["model"]: r for _, r in disc.iterrows()}

    def auc_cell(model):
        r = aucs.get(model)
        if r is None:
            return _value(DASH, f"{model} not in discrimination.tsv")
        return _value(fmt_ci(r["auc"], r["ci_low"], r["ci_high"]), _reason(r))

    for _, r in dl.iterrows():
        why = _reason(r)
        cells = [
            Cell(str(r["model"]), left=True),
            Cell(str(r["comparator"]), left=True),
            Cell(f"{fmt_count(r['n'])} ({fmt_count(r['n_events'])})"),
            auc_cell(r["model"]),
            auc_cell(r["comparator"]),
            _value(fmt_decimal(r["z"], 2), why),
            _value(fmt_p(r["p"]), why),
        ]
        pair = ni[(ni["model"] == r["model"]) & (ni["comparator"] == r["comparator"])]
        for measure in ("nri_continuous", "nri_categorical", "idi"):
            m = pair[pair["measure"] == measure]
            if m.empty:
                cells += [_value(DASH, f"no {measure} row in nri_idi.tsv")] * 2
                continue
            m = m.iloc[0]
            cells += [
                _value(fmt_decimal(m["value"]), _reason(m)),
                _value(fmt_p(m["p"]), _reason(m)),
            ]
        t.row(cells)
    if dl.empty:
        t.row(
            [
                Cell(
                    "No model pair of the paper among the models (delong.tsv has no rows): the "
                    "comparisons fill as the models land.",
                    left=True,
                    colspan=t.width,
                )
            ]
        )
    return t.render()


# ------------------------------------------------------------------------ calibration

CALIBRATION_COLUMNS = COLUMNS["calibration"]


def calibration_html(path, *, synthetic: bool) -> str:
    """calibration.tsv summary rows: intercept, slope, Brier, Hosmer-Lemeshow χ² (df), p."""
    df = frame(path, CALIBRATION_COLUMNS)
    summary = df[df["row"] == "summary"]
    t = _Html(
        "calibration_summary",
        [_heads("Model", "n", "Events", "Intercept", "Slope", "Brier", "HL χ² (df)", "HL p")],
        synthetic=synthetic,
        where=_center_of(df),
    )
    for _, r in summary.iterrows():
        why = _reason(r)
        chi = fmt_decimal(r["hl_chi2"], 2)
        if chi != DASH and not missing(r["hl_df"]):
            chi += f" ({fmt_count(r['hl_df'])})"
        t.row(
            [
                Cell(str(r["model"]), left=True),
                Cell(fmt_count(r["n"])),
                Cell(fmt_count(r["n_events"])),
                _value(fmt_decimal(r["intercept"]), why),
                _value(fmt_decimal(r["slope"]), why),
                _value(fmt_decimal(r["brier"]), why),
                _value(chi, why),
                _value(fmt_p(r["hl_p"]), why),
            ]
        )
    return t.render()


# ------------------------------------------------------------------------- risk groups

SURVIVAL_COLUMNS = COLUMNS["survival"]
SPLIT_LABELS = {
    "youden": "Youden threshold of the training centers",
    "h_score_median": "H-score median of the training centers",
}


def risk_groups_html(path, *, synthetic: bool) -> str:
    """survival.tsv: per split (Youden threshold, H-score median) and endpoint, the low and
    high groups' n, events and Kaplan-Meier median, with the Cox HR (low vs high) [95% CI],
    its p and the log-rank p spanning the two rows."""
    df = frame(path, SURVIVAL_COLUMNS)
    t = _Html(
        "risk_groups",
        [
            _heads(
                "Split",
                "Endpoint",
                "Group",
                "n",
                "Events",
                "Median (days)",
                "HR, low vs high [95% CI]",
                "Cox p",
                "Log-rank p",
                left=3,
            )
        ],
        synthetic=synthetic,
        where=_center_of(df),
    )
    for (split, endpoint), block in df.groupby(["split_by", "endpoint"], sort=False):
        first = block.iloc[0]
        cut = fmt_decimal(first["threshold"])
        label = (
            f"{SPLIT_LABELS.get(split, split)} ({cut})"
            if cut != DASH
            else SPLIT_LABELS.get(split, split)
        )
        score = "" if missing(first["score"]) else str(first["score"])
        split_cell = Cell(label, left=True, note=score if "no h_score" in score else None)
        groups = block[block["row"] == "group"]
        order = {"low": 0, "high": 1}  # the paper's order: low risk first
        groups = groups.iloc[
            sorted(range(len(groups)), key=lambda i: order.get(str(groups["group"].iloc[i]), 2))
        ]
        comp = block[block["row"] == "comparison"]
        c = comp.iloc[0] if len(comp) else None
        why = _reason(c) if c is not None else "no comparison row"
        stats = [
            _value(
                (
                    fmt_hr(*(c[k] for k in ("hr", "hr_ci_low", "hr_ci_high")))
                    if c is not None
                    else DASH
                ),
                why,
            ),
            _value(fmt_p(c["hr_p"]) if c is not None else DASH, why),
            _value(fmt_p(c["logrank_p"]) if c is not None else DASH, why),
        ]
        if groups.empty:
            t.row(
                [
                    split_cell,
                    Cell(ENDPOINT_LABELS.get(endpoint, endpoint), left=True),
                    _value(DASH, why),
                    _value(DASH, why),
                    _value(DASH, why),
                    _value(DASH, why),
                    *stats,
                ]
            )
            continue
        span = len(groups)
        for i, (_, g) in enumerate(groups.iterrows()):
            sign = {"low": "≤", "high": ">"}.get(str(g["group"]))
            name = str(g["group"]).capitalize() + (
                f" ({sign} {cut})" if sign and cut != DASH else ""
            )
            gwhy = _reason(g)
            median = (
                Cell("not reached")
                if missing(g["median_days"]) and not gwhy
                else _value(fmt_days(g["median_days"]), gwhy)
            )
            cells = []
            if i == 0:
                split_cell.rowspan = span
                cells += [
                    split_cell,
                    Cell(ENDPOINT_LABELS.get(endpoint, endpoint), left=True, rowspan=span),
                ]
            cells += [
                Cell(name, left=True),
                Cell(fmt_count(g["n"])),
                Cell(fmt_count(g["events"])),
                median,
            ]
            if i == 0:
                for s in stats:
                    s.rowspan = span
                cells += stats
            t.row(cells)
    return t.render()
