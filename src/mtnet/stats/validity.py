"""The validity benchmark: every model against the known truth of the synthetic cohort.

For each synthetic external center of a finished run (``results/synth/{center}/truth/``,
read here to measure, never by a model) and each model with predictions there:

- the model's AUC with its DeLong 95% CI;
- the Bayes-optimal ceiling of the model's information set (clinical table only, image
  only, or both: ``truth/ceilings.json``'s population AUC, from a 100,000-patient draw);
- the in-center AUC of the true risk of that information set on the same patients
  (``truth/patients.tsv``: risk_clinical, risk_image, risk_true) and the paired gap
  model - true risk, with the DeLong 95% CI and p of the paired difference: how much of
  what the information allows the model learned, on these patients;
- rows ``comparison``: each fused model (information ``both``) against each clinical-only
  model, paired DeLong (the paper's question: do the images add?).

:func:`validity_table` returns one table (columns :data:`COLUMNS`); ``mtnet validity
results/`` prints and writes it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mtnet.model import registry
from mtnet.stats import api
from mtnet.tables import read_tsv, write_tsv

log = logging.getLogger(__name__)

# information set -> the truth column of its Bayes risk (truth/patients.tsv)
TRUE_RISK = {"clinical": "risk_clinical", "image": "risk_image", "both": "risk_true"}
COLUMNS = [
    "center", "row", "model", "comparator", "information", "n", "n_events", "auc", "ci_low",
    "ci_high", "ceiling", "auc_true_risk", "gap", "gap_ci_low", "gap_ci_high", "gap_p",
    "engine", "reason",
]


def synthetic_external_centers(results) -> list[str]:
    """Centers whose truth says they are synthetic and external, sorted."""
    out = []
    for path in sorted(Path(results, "synth").glob("*/truth/ceilings.json")):
        record = json.loads(path.read_text())
        if record.get("synthetic") and record.get("role") == "external":
            out.append(path.parent.parent.name)
    return out


def _rows(center, preds: dict, truth: pd.DataFrame, ceilings: dict, engine: str) -> list[dict]:
    rows, merged = [], {}
    for model, df in preds.items():
        info = registry.MODELS[model].information if model in registry.MODELS else None
        base = {"center": center, "row": "model", "model": model, "information": info, "engine": engine}
        if info is None:
            rows.append({**base, "reason": "model not in the registry: information set unknown"})
            continue
        m = df[df["split"] == "external"].merge(truth[["patient_id", TRUE_RISK[info]]], on="patient_id")
        m = m.dropna(subset=["mvi", "risk"])
        merged[model] = m
        y, p, t = m["mvi"].to_numpy(float), m["risk"].to_numpy(float), m[TRUE_RISK[info]].to_numpy(float)
        base.update(n=len(m), n_events=int(y.sum()), ceiling=ceilings["auc"][info])
        try:
            a = api.auc_ci(y, p, engine=engine)
            gap = api.delong_test(y, p, t, engine=engine)
        except api.DegenerateInput as err:
            rows.append({**base, "reason": str(err)})
            continue
        rows.append({**base, "auc": a.auc, "ci_low": a.ci_low, "ci_high": a.ci_high,
                     "auc_true_risk": gap.auc2, "gap": gap.auc1 - gap.auc2,
                     "gap_ci_low": gap.diff_ci_low, "gap_ci_high": gap.diff_ci_high, "gap_p": gap.p,
                     "reason": ""})
    fused = [m for m in merged if registry.MODELS[m].information == "both"]
    clinical = [m for m in merged if registry.MODELS[m].information == "clinical"]
    for model in fused:
        for comp in clinical:
            m = merged[model].merge(merged[comp][["patient_id", "risk"]], on="patient_id",
                                    suffixes=("", "_comparator"))
            base = {"center": center, "row": "comparison", "model": model, "comparator": comp,
                    "information": "both vs clinical", "n": len(m), "n_events": int(m["mvi"].sum()),
                    "engine": engine}
            try:
                r = api.delong_test(m["mvi"], m["risk"], m["risk_comparator"], engine=engine)
            except api.DegenerateInput as err:
                rows.append({**base, "reason": str(err)})
                continue
            rows.append({**base, "auc": r.auc1, "auc_true_risk": np.nan, "gap": r.auc1 - r.auc2,
                         "gap_ci_low": r.diff_ci_low, "gap_ci_high": r.diff_ci_high, "gap_p": r.p,
                         "reason": ""})
    return rows


def validity_table(results, models=None, engine: str = "python") -> pd.DataFrame:
    """The benchmark over every synthetic external center of ``results`` (a results folder)."""
    from mtnet.tables import read_predictions

    results = Path(results)
    rows = []
    for center in synthetic_external_centers(results):
        truth_dir = results / "synth" / center / "truth"
        truth = read_tsv(truth_dir / "patients.tsv", required=["patient_id", *TRUE_RISK.values()],
                         what="synthetic truth")
        ceilings = json.loads((truth_dir / "ceilings.json").read_text())
        paths = sorted((results / "predictions" / center).glob("Model-*.tsv"))
        names = [p.stem for p in paths] if models is None else list(models)
        preds = read_predictions([p for p in paths if p.stem in names], names)
        log.info("%s: %s", center, ", ".join(preds) or "no predictions")
        rows += _rows(center, preds, truth, ceilings, engine)
    return pd.DataFrame(rows, columns=COLUMNS)


def format_table(table: pd.DataFrame) -> str:
    """The table as a reader wants it on a terminal or in a note (3 decimals)."""
    def f(v):
        return "" if pd.isna(v) else f"{v:.3f}"

    lines = []
    for _, r in table.iterrows():
        if r["reason"]:
            lines.append(f"{r['center']}  {r['model']}: {r['reason']}")
        elif r["row"] == "model":
            lines.append(f"{r['center']}  {r['model']:<22} {r['information']:<8} n={r['n']} events={r['n_events']}  "
                         f"AUC {f(r['auc'])} [{f(r['ci_low'])}-{f(r['ci_high'])}]  ceiling {f(r['ceiling'])}  "
                         f"true risk here {f(r['auc_true_risk'])}  gap {f(r['gap'])} "
                         f"[{f(r['gap_ci_low'])}, {f(r['gap_ci_high'])}] p={r['gap_p']:.3g}")
        else:
            lines.append(f"{r['center']}  {r['model']} vs {r['comparator']}: dAUC {f(r['gap'])} "
                         f"[{f(r['gap_ci_low'])}, {f(r['gap_ci_high'])}] DeLong p={r['gap_p']:.3g}")
    return "\n".join(lines)


def write_validity(results, out_path, models=None, engine: str = "python") -> pd.DataFrame:
    table = validity_table(results, models, engine)
    write_tsv(table, out_path)
    return table
