"""The canonical clinical and radiological factors (DESIGN.md section 2) as the paper
tabulates them: types for Table 1, groupings (lesion number 1/2/3/>3, AFP <25/25-400/>400),
and the subgroup definitions of paper section 3.3.

Shared by Table 1, the subgroup analyses and Model-Clinical-LR so that a factor is coded the
same way everywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Paper Table 1: how each canonical column is tabulated and tested.
#   continuous: KS normality -> t-test or Wilcoxon rank-sum; ordinal: Wilcoxon;
#   categorical: chi-squared or Fisher. ``levels`` orders categories / ordinal grades.
RADIOLOGICAL = [
    "fusion_lesions",
    "invasive_shape",
    "capsule",
    "capsule_breakthrough",
    "corona_enhancement",
    "corona_low_attenuation",
    "mosaic_architecture",
    "nodule_in_nodule",
]
LESION_GROUPS = ["1", "2", "3", ">3"]
AFP_GROUPS = ["<25", "25-400", ">400"]

VARIABLES: dict[str, dict] = {
    "age": {"type": "continuous"},
    "sex": {"type": "categorical", "levels": ["M", "F"]},
    "treatment": {"type": "categorical", "levels": ["resection", "TACE", "ablation"]},
    "hbv": {"type": "categorical", "levels": ["0", "1"]},
    "cirrhosis": {"type": "categorical", "levels": ["0", "1"]},
    "child_pugh": {"type": "categorical", "levels": ["A", "B"]},
    "bclc": {"type": "ordinal", "levels": ["0", "A", "B"]},
    "max_diameter_mm": {"type": "continuous"},
    "lesion_number": {"type": "ordinal", "levels": LESION_GROUPS},
    "afp_ng_ml": {"type": "ordinal", "levels": AFP_GROUPS},
    **{c: {"type": "categorical", "levels": ["0", "1"]} for c in RADIOLOGICAL},
    "enhancement_ratio": {"type": "continuous"},
    "mvi": {"type": "categorical", "levels": ["0", "1"]},
}
TABLE1_COLUMNS = list(VARIABLES)


def lesion_group(x) -> pd.Series:
    """Lesion number as tabulated: 1, 2, 3, >3."""
    v = pd.to_numeric(pd.Series(x), errors="coerce")
    out = pd.Series(pd.NA, index=v.index, dtype="object")
    out[v == 1] = "1"
    out[v == 2] = "2"
    out[v == 3] = "3"
    out[v > 3] = ">3"
    return out


def afp_group(x) -> pd.Series:
    """AFP (ng/mL) as tabulated: <25, 25-400, >400."""
    v = pd.to_numeric(pd.Series(x), errors="coerce")
    out = pd.Series(pd.NA, index=v.index, dtype="object")
    out[v < 25] = "<25"
    out[(v >= 25) & (v <= 400)] = "25-400"
    out[v > 400] = ">400"
    return out


def _as_code(x) -> pd.Series:
    """Category codes as strings ('0'/'1' for 0/1 readings, 1.0 -> '1'), NA kept."""
    s = pd.Series(x)

    def one(v):
        if pd.isna(v):
            return pd.NA
        if isinstance(v, (int, float, np.integer, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()

    return s.map(one).astype("object")


def tabulated(df: pd.DataFrame, column: str) -> pd.Series:
    """A column as the paper tabulates it: grouped, coded as strings, or numeric."""
    if column == "lesion_number":
        return lesion_group(df[column]).set_axis(df.index)
    if column == "afp_ng_ml":
        return afp_group(df[column]).set_axis(df.index)
    kind = VARIABLES.get(column, {}).get("type")
    if kind == "continuous":
        return pd.to_numeric(df[column], errors="coerce")
    return _as_code(df[column]).set_axis(df.index)


# Paper section 3.3: the best model's AUC within each level of these factors, with
# unpaired DeLong tests between levels. Cut-offs of continuous factors are fixed here.
SUBGROUP_AGE_YEARS = 60.0
SUBGROUP_DIAMETER_MM = 50.0


def subgroup_levels(df: pd.DataFrame) -> dict[str, pd.Series]:
    """Factor -> level label per patient (NA when the factor is missing)."""
    out = {}

    def cut(col, cutoff, unit):
        v = pd.to_numeric(df[col], errors="coerce")
        s = pd.Series(pd.NA, index=df.index, dtype="object")
        s[v <= cutoff] = f"<={cutoff:g}{unit}"
        s[v > cutoff] = f">{cutoff:g}{unit}"
        return s

    if "age" in df:
        out["age"] = cut("age", SUBGROUP_AGE_YEARS, "y")
    for col in ("sex", "treatment", "child_pugh", "cirrhosis", "bclc"):
        if col in df:
            out[col] = tabulated(df, col)
    if "max_diameter_mm" in df:
        out["max_diameter_mm"] = cut("max_diameter_mm", SUBGROUP_DIAMETER_MM, "mm")
    if "lesion_number" in df:
        v = pd.to_numeric(df["lesion_number"], errors="coerce")
        s = pd.Series(pd.NA, index=df.index, dtype="object")
        s[v == 1] = "single"
        s[v > 1] = "multiple"
        out["lesion_number"] = s
    if "afp_ng_ml" in df:
        out["afp_ng_ml"] = tabulated(df, "afp_ng_ml")
    return out


def level_order(factor: str, levels) -> list:
    """Levels of a factor in the paper's order (known codes first), others sorted."""
    known = VARIABLES.get(factor, {}).get("levels", [])
    present = [lv for lv in levels if not pd.isna(lv)]
    return [lv for lv in known if lv in present] + sorted(lv for lv in present if lv not in known)
