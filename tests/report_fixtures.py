"""Inputs of the report tests: real outputs of the statistics code on synthetic data.

Typed results of the statistics API for one center, and the per-center TSVs written by
mtnet.stats.analyses.evaluate_center and mtnet.stats.table1.write_table1 (python engine).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mtnet import stats
from mtnet.stats.analyses import COLUMNS, evaluate_center
from mtnet.stats.table1 import write_table1
from stats_synthetic import clinical_table, predictions, write_table

SIGNAL = {"Model-CR-DR": 2.5, "Model-CR": 1.5, "Model-DR": 1.0, "Model-Clinical-LR": 1.2}
MODELS = list(SIGNAL)
SIZES = {"TA": (150, 1), "TB": (130, 2), "TX": (85, 3)}
THRESHOLDS = np.round(np.arange(0.01, 0.61, 0.01), 10)
CEILINGS = {
    "synthetic": True,
    "auc": {"clinical": 0.7685, "image": 0.7984, "both": 0.8704},
    "role": "external",
    "event_rate": 0.125,
    "n_draw": 100000,
}


def center_predictions(n=160, seed=3) -> dict[str, pd.DataFrame]:
    table = clinical_table("TX", n, seed)
    return {
        m: predictions(table, m, s, seed * 10 + i, "external")
        for i, (m, s) in enumerate(SIGNAL.items())
    }


def typed_results(engine="python", boot_n=200) -> dict:
    """auc_ci (with band), calibration, net_benefit per model; KM and Cox of the best
    model's risk groups for both endpoints."""
    preds = center_predictions()
    out = {"auc": {}, "calibration": {}, "net_benefit": {}}
    for m, d in preds.items():
        y, p = d["mvi"].to_numpy(float), d["risk"].to_numpy(float)
        out["auc"][m] = stats.auc_ci(y, p, band_seed=7, boot_n=boot_n, engine=engine)
        out["calibration"][m] = stats.calibration(y, p, engine=engine)
        out["net_benefit"][m] = stats.net_benefit(y, p, THRESHOLDS, engine=engine)
    best = preds["Model-CR-DR"]
    group = np.where(best["risk"] > best["risk"].median(), "high", "low")
    for endpoint, (tcol, ecol) in {
        "time_to_mvi": ("time_to_mvi_days", "mvi"),
        "os": ("os_days", "death"),
    }.items():
        t, e = best[tcol].to_numpy(float), best[ecol].to_numpy(float)
        out[f"km_{endpoint}"] = stats.km_logrank(t, e, group, engine=engine)
        out[f"cox_{endpoint}"] = stats.cox_hr(t, e, group, engine=engine)
    return out


def write_center_tsvs(root, engine="python", degenerate=False) -> dict:
    """The seven TSVs of TX (and table1.tsv) from a three-center synthetic cohort; with
    ``degenerate`` one model has a NaN risk (an NA row with its reason)."""
    root.mkdir(parents=True, exist_ok=True)
    tables, preds = {}, {}
    for center, (n, seed) in SIZES.items():
        t = clinical_table(center, n, seed)
        tables[center] = write_table(t, root / f"{center}.tsv")
        split = "external" if center == "TX" else "apparent"
        for i, model in enumerate(MODELS):
            frame = predictions(t, model, SIGNAL[model], seed * 100 + i, split)
            if degenerate and center == "TX" and model == "Model-DR":
                frame.loc[frame.index[0], "risk"] = np.nan
            path = root / center / f"{model}.tsv"
            path.parent.mkdir(exist_ok=True)
            frame.to_csv(path, sep="\t", index=False, na_rep="NA")
            preds[(center, model)] = path
    outputs = {k: root / "stats" / "TX" / f"{k}.tsv" for k in COLUMNS}
    evaluate_center(
        "TX",
        predictions=[preds[("TX", m)] for m in MODELS],
        training_predictions=[preds[(c, m)] for m in MODELS for c in ("TA", "TB")],
        tables=[tables["TX"]],
        models=MODELS,
        outputs=outputs,
        settings={"engine": engine},
    )
    outputs["table1"] = root / "stats" / "table1.tsv"
    write_table1(
        [tables["TA"], tables["TB"]], [tables["TX"]], ["TX"], outputs["table1"], engine=engine
    )
    ceilings = root / "truth" / "ceilings.json"
    ceilings.parent.mkdir(exist_ok=True)
    ceilings.write_text(json.dumps(CEILINGS, indent=2))
    outputs["ceilings"] = ceilings
    return outputs


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["NA"])
