"""The statistics' typed records rebuilt from the workflow's TSVs, for the figures.

The stats rule writes the seven tables and the curve tables of
:data:`mtnet.stats.analyses.CURVE_COLUMNS`; the figure rules read them back here, so every
number drawn is one a test can compare byte for byte. Each reader returns the records of
the models (or risk-group splits) that have curves, in the tables' order, and the reason
for each one that has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mtnet.report.formatting import missing
from mtnet.report.inputs import frame
from mtnet.stats.analyses import COLUMNS, CURVE_COLUMNS
from mtnet.stats.results import AUCResult, CalibrationResult, CoxResult, KMResult


def _reason(row) -> str:
    r = row.get("reason", "")
    return "" if missing(r) else str(r)


def _of(df: pd.DataFrame, model: str) -> pd.DataFrame:
    return df[df["model"].astype(str) == model]


def roc_results(discrimination, roc_curves, roc_bands=None):
    """model -> :class:`AUCResult` (AUC and DeLong CI of discrimination.tsv, ROC points of
    roc_curves.tsv, band of roc_bands.tsv with its ``attrs``), and model -> reason for the
    models without a curve."""
    disc = frame(discrimination, COLUMNS["discrimination"])
    roc = frame(roc_curves, CURVE_COLUMNS["roc_curves"])
    bands = frame(roc_bands, CURVE_COLUMNS["roc_bands"]) if roc_bands is not None else None
    out, reasons = {}, {}
    for _, r in disc.iterrows():
        model = str(r["model"])
        points = _of(roc, model)
        if _reason(r) or points.empty or missing(r["auc"]):
            reasons[model] = _reason(r) or "no ROC curve"
            continue
        band = pd.DataFrame(columns=CURVE_COLUMNS["roc_bands"][2:7])
        if bands is not None and not _of(bands, model).empty:
            b = _of(bands, model)
            band = b[CURVE_COLUMNS["roc_bands"][2:7]].reset_index(drop=True)
            band.attrs.update(
                boot_n=int(b["boot_n"].iloc[0]),
                conf_level=float(b["conf_level"].iloc[0]),
                seed=int(b["seed"].iloc[0]),
            )
        out[model] = AUCResult(
            float(r["auc"]),
            float(r["ci_low"]),
            float(r["ci_high"]),
            int(r["n"]),
            int(r["n_events"]),
            str(r["engine"]),
            points[["threshold", "fpr", "tpr"]].reset_index(drop=True),
            band,
        )
    return out, reasons


def calibration_results(calibration, calibration_curves):
    """model -> :class:`CalibrationResult` (summary of calibration.tsv, bins with Wilson
    intervals and the lowess smooth of calibration_curves.tsv), and model -> reason."""
    cal = frame(calibration, COLUMNS["calibration"])
    cur = frame(calibration_curves, CURVE_COLUMNS["calibration_curves"])
    out, reasons = {}, {}
    for _, r in cal[cal["row"] == "summary"].iterrows():
        model = str(r["model"])
        mine = _of(cur, model)
        bins = mine[mine["curve"] == "bin"]
        if missing(r["intercept"]) or bins.empty:
            reasons[model] = _reason(r) or "no calibration curve"
            continue
        smooth = mine[mine["curve"] == "smooth"]
        out[model] = CalibrationResult(
            float(r["intercept"]),
            float(r["slope"]),
            float(r["brier"]),
            float(r["hl_chi2"]),
            0 if missing(r["hl_df"]) else int(r["hl_df"]),
            float(r["hl_p"]),
            str(r["engine"]),
            pd.DataFrame(
                {
                    "bin": bins["bin"].astype(int).to_numpy(),
                    "n": bins["n"].astype(int).to_numpy(),
                    "mean_predicted": bins["mean_predicted"].to_numpy(float),
                    "observed": bins["observed"].to_numpy(float),
                    "n_events": bins["n_events"].astype(int).to_numpy(),
                    "observed_low": bins["observed_low"].to_numpy(float),
                    "observed_high": bins["observed_high"].to_numpy(float),
                }
            ),
            pd.DataFrame(
                {
                    "predicted": smooth["mean_predicted"].to_numpy(float),
                    "observed": smooth["observed"].to_numpy(float),
                }
            ),
        )
    return out, reasons


@dataclass
class RiskGroupCurves:
    """One Kaplan-Meier panel: a split (``youden`` or ``h_score_median``) and an endpoint."""

    split_by: str
    endpoint: str
    model: str
    score: str
    threshold: float
    km: KMResult | None = None
    cox: CoxResult | None = None
    reason: str = ""
    labels: dict = field(default_factory=dict)


def score_name(score: str) -> str:
    """How a split's score reads in a legend: ``H-score`` or ``risk``."""
    return "H-score" if str(score) == "h_score" else "risk"


def km_results(survival, km_curves, km_at_risk) -> list[RiskGroupCurves]:
    """Every (split, endpoint) of survival.tsv with its KM curves, numbers at risk, log-rank
    and Cox HR, or the reason it has none (in the table's order)."""
    surv = frame(survival, COLUMNS["survival"])
    curves = frame(km_curves, CURVE_COLUMNS["km_curves"])
    at_risk = frame(km_at_risk, CURVE_COLUMNS["km_at_risk"])
    out = []
    for (split_by, endpoint), block in surv.groupby(["split_by", "endpoint"], sort=False):
        first = block.iloc[0]
        cut = float(first["threshold"]) if not missing(first["threshold"]) else math.nan
        panel = RiskGroupCurves(
            str(split_by), str(endpoint), str(first["model"]), str(first["score"]), cut
        )
        name = score_name(panel.score)
        if math.isfinite(cut):
            panel.labels = {"low": f"{name} ≤ {cut:.3f}", "high": f"{name} > {cut:.3f}"}
        key = (curves["split_by"] == split_by) & (curves["endpoint"] == endpoint)
        cur = curves[key]
        groups = block[block["row"] == "group"]
        groups = groups[groups["reason"].fillna("").astype(str) == ""]
        comp = block[block["row"] == "comparison"]
        c = comp.iloc[0] if len(comp) else None
        if cur.empty or groups.empty or c is None or missing(c["logrank_p"]):
            reasons = [_reason(r) for _, r in block.iterrows() if _reason(r)]
            panel.reason = "; ".join(dict.fromkeys(reasons)) or "no Kaplan-Meier curves"
            out.append(panel)
            continue
        risk = at_risk[(at_risk["split_by"] == split_by) & (at_risk["endpoint"] == endpoint)]
        panel.km = KMResult(
            float(c["logrank_chi2"]),
            len(groups) - 1,
            float(c["logrank_p"]),
            str(c["engine"]),
            pd.DataFrame(
                {
                    "group": groups["group"].astype(str).to_numpy(),
                    "n": groups["n"].astype(int).to_numpy(),
                    "events": groups["events"].astype(int).to_numpy(),
                    "median": groups["median_days"].to_numpy(float),
                }
            ),
            cur[CURVE_COLUMNS["km_curves"][4:]].reset_index(drop=True),
            risk[["group", "time", "n_risk"]].reset_index(drop=True),
        )
        if not missing(c["hr"]):
            hr = float(c["hr"])
            panel.cox = CoxResult(
                float(np.log(hr)) if hr > 0 else math.nan,
                math.nan,
                hr,
                float(c["hr_ci_low"]),
                float(c["hr_ci_high"]),
                float(c["hr_p"]),
                str(c["engine"]),
            )
        else:
            panel.reason = _reason(c)
        out.append(panel)
    return out
