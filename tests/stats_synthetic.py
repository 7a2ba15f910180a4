"""Synthetic clinical tables and prediction files for the statistics tests (NumPy only).

The shapes follow docs/design.md section 2 (canonical columns, `NA` missing); outcomes depend on
a few factors so that a model has something to find.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtnet.factors import RADIOLOGICAL
from mtnet.tables import PREDICTION_COLUMNS


def clinical_table(center: str, n: int, seed: int, event_rate: float = 0.15) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "patient_id": [f"{center}-{i + 1:04d}" for i in range(n)],
            "age": rng.normal(56, 12, n).round(1),
            "sex": rng.choice(["M", "F"], n, p=[0.8, 0.2]),
            "treatment": rng.choice(["resection", "TACE", "ablation"], n, p=[0.3, 0.6, 0.1]),
            "hbv": rng.binomial(1, 0.9, n),
            "cirrhosis": rng.binomial(1, 0.55, n),
            "child_pugh": rng.choice(["A", "B"], n, p=[0.85, 0.15]),
            "bclc": rng.choice(["0", "A", "B"], n, p=[0.12, 0.6, 0.28]),
            "max_diameter_mm": np.exp(rng.normal(4.1, 0.5, n)).round(1),
            "lesion_number": rng.choice([1, 2, 3, 4, 5], n, p=[0.65, 0.17, 0.08, 0.06, 0.04]),
            "afp_ng_ml": np.exp(rng.normal(4, 2.5, n)).round(1),
            "location": rng.choice(["left", "right", "both"], n),
        }
    )
    for col in RADIOLOGICAL:
        df[col] = rng.binomial(1, 0.35, n)
    # a capsule breakthrough needs a capsule (ingestion's row rules)
    df["capsule_breakthrough"] *= df["capsule"]
    df["enhancement_ratio"] = rng.normal(1.2, 0.2, n).round(3)
    lin = (
        -2.6
        + 1.2 * (df["bclc"] == "B")
        + 1.0 * df["invasive_shape"]
        + 0.9 * df["corona_low_attenuation"]
        + 0.01 * (df["max_diameter_mm"] - 60)
        + rng.normal(0, 0.3, n)
    )
    shift = np.quantile(lin, 1 - event_rate) - lin.mean()
    prob = 1 / (1 + np.exp(-(lin - lin.mean() - shift)))
    mvi = rng.binomial(1, np.clip(prob, 0.01, 0.99))
    df["mvi"] = mvi
    follow = rng.uniform(200, 2000, n)
    t_mvi = rng.exponential(600, n)
    hazard = 1 / (900 * np.exp(-0.8 * mvi))
    t_death = rng.exponential(1 / hazard)
    os_days = np.minimum(t_death, follow).round()
    # time to MVI ends at the last follow-up (death or censoring), as ingestion requires
    df["time_to_mvi_days"] = np.where(mvi == 1, np.minimum(t_mvi, os_days), os_days).round()
    df["death"] = (t_death < follow).astype(int)
    df["os_days"] = os_days
    df["mvi"] = df["mvi"].astype(int)
    df.insert(len(df.columns), "center", center)
    return df


def write_table(df: pd.DataFrame, path) -> str:
    df.to_csv(path, sep="\t", index=False, na_rep="NA")
    return str(path)


def predictions(
    table: pd.DataFrame, model: str, signal: float, seed: int, split: str
) -> pd.DataFrame:
    """A model's predictions for the patients of a table: logit risk = signal * mvi + noise."""
    rng = np.random.default_rng(seed)
    n = len(table)
    eta = -2.0 + signal * table["mvi"].to_numpy() + rng.normal(0, 1, n)
    out = pd.DataFrame(
        {
            "patient_id": table["patient_id"],
            "center": table["center"],
            "model": model,
            "risk": 1 / (1 + np.exp(-eta)),
            "mvi": table["mvi"],
            "time_to_mvi_days": table["time_to_mvi_days"],
            "death": table["death"],
            "os_days": table["os_days"],
            "split": split,
        }
    )
    return out[PREDICTION_COLUMNS]
