"""The report's items as files, for the workflow's report rules (workflow/rules/report.smk).

Each function draws or renders from the TSVs the statistics rules wrote (never from the
predictions directly) and writes what the rule declares: figures as SVG (vector, the same
bytes for the same data), tables as self-contained HTML pages that Snakemake's report shows
on screen in a frame (a TSV there is only offered for download).

- :func:`center_figures`: ROC, calibration, decision curve, the four Kaplan-Meier panels
  (time to MVI and OS by the Youden and the H-score split) and the subgroup forest plot of
  one evaluated center;
- :func:`center_tables`: its discrimination, model comparison, calibration and risk-group
  tables; :func:`table1_page`: Table 1;
- :func:`ceilings_page`: a synthetic center's model AUCs against the Bayes ceilings;
- :func:`training_figure`: a model's training log (epochs or a penalty's path);
- :func:`tumor_montage`: tumor, ring and the MTnet ROI of a center's first patients.

An analysis that could not be computed (too few patients, no events, no model pair)
becomes a figure that says so and why, never an absent file or a silent empty plot.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mtnet.errors import InputError
from mtnet.report import captions, figures, tables
from mtnet.report.curves import calibration_results, km_results, roc_results, score_name
from mtnet.report.formatting import ENDPOINT_LABELS, SYNTHETIC_BANNER
from mtnet.report.inputs import frame, read_ceilings

SPLITS = ("youden", "h_score_median")
ENDPOINTS = ("time_to_mvi", "os")
KM_FIGURES = tuple(f"km_{s}_{e}" for s in SPLITS for e in ENDPOINTS)
CENTER_FIGURES = ("roc", "calibration", "decision_curve", *KM_FIGURES, "forest")
CENTER_TABLES = ("discrimination", "model_comparison", "calibration_summary", "risk_groups")
SPLIT_TITLES = {"youden": "Youden risk groups", "h_score_median": "H-score groups"}
PAGE_STYLE = (
    "body{font-family:sans-serif;margin:12px;color:#000;background:#fff}"
    ".mtnet-note{font-size:0.85em;color:#333;max-width:60em}"
    ".mtnet-banner{background:#B22222;color:#fff;font-weight:bold;padding:4px 8px;"
    "display:inline-block}"
)


# ----------------------------------------------------------------------------- pages


def html_page(title: str, body: str, *, note: str = "", synthetic: bool = False) -> str:
    """A complete UTF-8 HTML page (the report frames it from a data URI: no external files,
    no script)."""
    banner = (
        f'<p><span class="mtnet-banner">{html.escape(SYNTHETIC_BANNER)}</span></p>\n'
        if synthetic
        else ""
    )
    foot = f'<p class="mtnet-note">{html.escape(note)}</p>\n' if note else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n"
        f"<body>\n{banner}{body}{foot}</body>\n</html>\n"
    )


def write_page(path, title: str, body: str, **kw) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(title, body, **kw), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- figures


def _save(fig, path) -> Path:
    return figures.save_svg(fig, path)


def _or_reason(draw, title: str, synthetic: bool, reasons: Mapping[str, str] | None = None):
    """``draw()``, or a figure naming why it cannot be drawn."""
    try:
        return draw()
    except InputError as err:
        detail = "; ".join(f"{m}: {r}" for m, r in (reasons or {}).items())
        return figures.not_drawn(title, detail or str(err), synthetic=synthetic)


def center_figures(
    center: str,
    *,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    synthetic: bool,
    split: str | None = None,
) -> dict[str, Path]:
    """The figures of :data:`CENTER_FIGURES` named in ``outputs`` (SVG paths), drawn from
    the stats rule's TSVs in ``inputs`` (keys: the seven tables and the curve tables)."""
    label = captions.center_label(center, split)
    done = {}

    if "roc" in outputs:
        roc, why = roc_results(inputs["discrimination"], inputs["roc_curves"], inputs["roc_bands"])
        title = f"ROC curves — {label}"
        fig = _or_reason(
            lambda: figures.roc_figure(roc, center=center, synthetic=synthetic, title=title),
            title,
            synthetic,
            why,
        )
        done["roc"] = _save(fig, outputs["roc"])

    if "calibration" in outputs:
        cal, why = calibration_results(inputs["calibration"], inputs["calibration_curves"])
        title = f"Calibration — {label}"
        fig = _or_reason(
            lambda: figures.calibration_figure(
                cal, center=center, synthetic=synthetic, title=title
            ),
            title,
            synthetic,
            why,
        )
        done["calibration"] = _save(fig, outputs["calibration"])

    if "decision_curve" in outputs:
        rows = frame(inputs["decision_curve"])
        why = _model_reasons(rows)
        title = f"Decision curve — {label}"
        fig = _or_reason(
            lambda: figures.decision_curve_figure(
                rows, center=center, synthetic=synthetic, title=title
            ),
            title,
            synthetic,
            why,
        )
        done["decision_curve"] = _save(fig, outputs["decision_curve"])

    wanted = [k for k in KM_FIGURES if k in outputs]
    if wanted:
        panels = {
            f"km_{p.split_by}_{p.endpoint}": p
            for p in km_results(inputs["survival"], inputs["km_curves"], inputs["km_at_risk"])
        }
        for key in wanted:
            split_by, endpoint = _km_key(key)
            title = f"{ENDPOINT_LABELS[endpoint]}, {SPLIT_TITLES[split_by]} — {label}"
            p = panels.get(key)
            if p is None or p.km is None:
                reason = p.reason if p is not None else "no risk-group analysis (no best model)"
                fig = figures.not_drawn(title, reason, synthetic=synthetic)
            else:
                fig = figures.km_figure(
                    p.km,
                    endpoint=endpoint,
                    center=center,
                    synthetic=synthetic,
                    cox=p.cox,
                    labels=p.labels,
                    hr_note=p.reason or None,
                    title=f"{title}\n{p.model}, {score_name(p.score)} split",
                )
            done[key] = _save(fig, outputs[key])

    if "forest" in outputs:
        sub = frame(inputs["subgroups"])
        disc = frame(inputs["discrimination"])
        title = f"Subgroups — {label}"
        overall = None
        if not sub.empty and "model" in sub:
            best = disc[disc["model"].astype(str) == str(sub["model"].iloc[0])]
            if len(best) and not best["auc"].isna().all():
                r = best.iloc[0]
                overall = (float(r["auc"]), float(r["ci_low"]), float(r["ci_high"]))
            title = f"Subgroups — {sub['model'].iloc[0]} — {label}"
        fig = _or_reason(
            lambda: figures.forest_figure(
                sub, center=center, synthetic=synthetic, overall=overall, title=title
            ),
            title,
            synthetic,
        )
        done["forest"] = _save(fig, outputs["forest"])
    return done


def _km_key(key: str) -> tuple[str, str]:
    for split_by in SPLITS:
        for endpoint in ENDPOINTS:
            if key == f"km_{split_by}_{endpoint}":
                return split_by, endpoint
    raise KeyError(key)


def _model_reasons(rows) -> dict[str, str]:
    if "reason" not in rows or rows.empty:
        return {}
    bad = rows[rows["reason"].fillna("").astype(str) != ""]
    return dict(zip(bad["model"].astype(str), bad["reason"].astype(str)))


def ceilings_page(
    center: str,
    *,
    discrimination,
    ceilings: list,
    output,
    split: str | None = None,
) -> Path:
    """A synthetic center's model AUCs against the Bayes-optimal ceilings of its
    truth/ceilings.json (the pooled training centers: their common record; members whose
    ceilings differ are refused, there is no single ceiling for their mixture)."""
    records = [read_ceilings(p) for p in ceilings]
    if not records:
        raise InputError("no ceilings.json given", center=center)
    aucs = {json.dumps(r["auc"], sort_keys=True) for r in records}
    label = captions.center_label(center, split)
    title = f"Model AUCs against the Bayes-optimal ceilings — {label}"
    if len(aucs) > 1:
        fig = figures.not_drawn(
            title,
            "the training centers' ceilings differ (different presets): no single ceiling "
            "for the pooled centers; see each center's own",
            synthetic=True,
        )
    else:
        fig = _or_reason(
            lambda: figures.ceilings_figure(
                discrimination, records[0], center=center, synthetic=True, title=title
            ),
            title,
            True,
            _model_reasons(frame(discrimination)),
        )
    return _save(fig, output)


def training_figure(log, *, model: str, model_folder, output, synthetic: bool) -> Path:
    """A model's training log: per-epoch curves (a network) or the tuning path of a
    penalised fit (the chosen value from the fitted model's ``model.json``)."""
    df = frame(log)
    if "epoch" in df.columns:
        # a column a network does not record is a panel that says so, not a failure
        df = df.reindex(columns=list(dict.fromkeys(figures.TRAINING_COLUMNS + list(df.columns))))
        draw = lambda: figures.training_curves_figure(df, model=model, synthetic=synthetic)  # noqa: E731
    else:
        draw = lambda: figures.fit_path_figure(  # noqa: E731
            df, model=model, synthetic=synthetic, chosen=chosen_penalty(model_folder)
        )
    return _save(_or_reason(draw, f"Training — {model}", synthetic), output)


def chosen_penalty(model_folder) -> float | None:
    """The tuning value a penalised model kept (Model-Clinical-LR: fit.l2_penalty; the
    radiomics models: C), None when its folder records none."""
    path = Path(model_folder) / "model.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    value = record.get("fit", {}).get("l2_penalty", record.get("C"))
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


# ---------------------------------------------------------------------------- tables


def center_tables(
    center: str,
    *,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    synthetic: bool,
    note: str = "",
    split: str | None = None,
) -> dict[str, Path]:
    """The HTML pages of :data:`CENTER_TABLES` named in ``outputs``."""
    label = captions.center_label(center, split)
    bodies = {
        "discrimination": lambda: tables.discrimination_html(
            inputs["discrimination"], synthetic=synthetic
        ),
        "model_comparison": lambda: tables.model_comparison_html(
            inputs["discrimination"], inputs["delong"], inputs["nri_idi"], synthetic=synthetic
        ),
        "calibration_summary": lambda: tables.calibration_html(
            inputs["calibration"], synthetic=synthetic
        ),
        "risk_groups": lambda: tables.risk_groups_html(inputs["survival"], synthetic=synthetic),
    }
    done = {}
    for name in CENTER_TABLES:
        if name in outputs:
            title = f"{captions.CAPTIONS[name].title} — {label}"
            # the table's own first row is the banner
            done[name] = write_page(outputs[name], title, bodies[name](), note=note)
    return done


def table1_page(path, output, *, synthetic: bool, note: str = "") -> Path:
    return write_page(
        output,
        captions.CAPTIONS["table1"].title,
        tables.table1_html(path, synthetic=synthetic),
        note=note,
    )


# ---------------------------------------------------------------------------- QC


def tumor_montage(
    center: str,
    *,
    images,
    tumor,
    rings,
    roi,
    output,
    synthetic: bool,
    max_patients: int = 12,
) -> Path:
    """The first ``max_patients`` of a center: the axial CT slice through the tumor with
    the tumor (red) and its peritumoral ring (yellow), and the same slice of the MTnet ROI
    crop (``roi/{pid}.npz``: its HU clipped to the crop's window, as the network sees them;
    tumor red, liver green)."""
    import SimpleITK as sitk

    from mtnet import imaging
    from mtnet.tumor.roi import load_roi

    pids = imaging.patient_ids(images)[:max_patients]
    panels = []
    for pid in pids:
        ct = sitk.ReadImage(str(Path(images) / f"{pid}.nii.gz"))
        arr = sitk.GetArrayFromImage(ct)
        spacing = ct.GetSpacing()[::-1]
        t = _mask(Path(tumor) / f"{pid}.nii.gz")
        ring = _mask(Path(rings) / f"{pid}.nii.gz")
        panels.append(
            imaging.montage_panel(
                f"{pid} CT", arr, [(t, "red"), (ring, "yellow")], spacing, centre=t
            )
        )
        npz = Path(roi) / f"{pid}.npz"
        if npz.exists():
            crop = load_roi(npz)
            # in HU, so the montage's window shows the crop as it shows the CT
            img = np.clip(crop.hu.astype(float), *crop.hu_window)
            rt, rl = crop.tumor, crop.liver
            rs = tuple(float(v) for v in crop.spacing_mm)[::-1]
            panels.append(
                imaging.montage_panel(
                    f"{pid} ROI {'x'.join(str(s) for s in img.shape[::-1])}",
                    img,
                    [(rt, "red"), (rl, "lime")],
                    rs,
                    centre=rt,
                )
            )
    title = f"Tumor (red), peritumoral ring (yellow) and MTnet ROI (liver green) — {center}"
    if synthetic:
        title = f"{SYNTHETIC_BANNER}\n{title}"
    output = Path(output)
    imaging.montage(panels, output, title, columns=4)
    return output


def _mask(path: Path):
    import SimpleITK as sitk

    if not path.exists():
        return None
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(bool)
