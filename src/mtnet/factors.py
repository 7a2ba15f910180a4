"""The canonical clinical and radiological factors: columns, codes, groupings, encoding.

The one home of what a factor is (docs/design.md §2): ingestion validates against
:data:`CANONICAL`, the synthetic cohort writes it, Table 1 and the subgroup analyses tabulate
it with :func:`tabulated`, and every model encodes it with :class:`Encoding`.

Codes are those a real hospital holds: Child-Pugh A/B/C and BCLC 0/A/B/C/D, although the
paper's cohort has only A/B and 0/A/B. A level that the training centers lack cannot get a
coefficient, so :class:`Encoding` pools it, explicitly and logged: an ordered factor's
unseen level goes to the nearest level present in training (ties to the more advanced one:
Child-Pugh C with B, BCLC C and D with B), an unordered factor's to the reference level.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mtnet.errors import InputError

log = logging.getLogger(__name__)

BINARY = ("0", "1")
LESION_GROUPS = ("1", "2", "3", ">3")
AFP_GROUPS = ("<25", "25-400", ">400")


@dataclass(frozen=True)
class Factor:
    """A canonical column.

    kind: ``id`` | ``float`` | ``int`` | ``time`` (days) | ``code`` | ``text``;
    ``codes``: the allowed codes of a ``code`` column, in their order (ordinal where
    ``ordered``); ``limits``: (low, high) of a number, None for no bound;
    ``table1``: how Table 1 tabulates it (``continuous`` | ``categorical`` | ``ordinal``).
    """

    kind: str
    codes: tuple = ()
    limits: tuple | None = None
    table1: str | None = None
    ordered: bool = False


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

# docs/design.md §2, in the order of clinical.tsv
CANONICAL: dict[str, Factor] = {
    "patient_id": Factor("id"),
    "age": Factor("float", limits=(0, 120), table1="continuous"),
    "sex": Factor("code", ("M", "F"), table1="categorical"),
    "treatment": Factor("code", ("resection", "TACE", "ablation"), table1="categorical"),
    "hbv": Factor("code", BINARY, table1="categorical"),
    "cirrhosis": Factor("code", BINARY, table1="categorical"),
    "child_pugh": Factor("code", ("A", "B", "C"), table1="categorical", ordered=True),
    "bclc": Factor("code", ("0", "A", "B", "C", "D"), table1="ordinal", ordered=True),
    "max_diameter_mm": Factor("float", limits=(1, 300), table1="continuous"),
    "lesion_number": Factor("int", limits=(1, None), table1="ordinal"),
    "afp_ng_ml": Factor("float", limits=(0, None), table1="ordinal"),
    "location": Factor("text"),
    **{c: Factor("code", BINARY, table1="categorical") for c in RADIOLOGICAL},
    "enhancement_ratio": Factor("float", table1="continuous"),
    "mvi": Factor("code", BINARY, table1="categorical"),
    "time_to_mvi_days": Factor("time"),
    "death": Factor("code", BINARY),
    "os_days": Factor("time"),
}
CANONICAL_COLUMNS = list(CANONICAL)
# (event flag, time) of the two endpoints: time to MVI and overall survival
EVENTS = (("mvi", "time_to_mvi_days"), ("death", "os_days"))
# grouped columns that ingestion appends to clinical.tsv (paper Table 1's groupings)
DERIVED = {"afp_group": "afp_ng_ml", "lesion_number_group": "lesion_number"}
TABLE1_COLUMNS = [c for c, f in CANONICAL.items() if f.table1]

# Factors of the clinical models (Model-Clinical-LR, MTnet's clinical block), as tabulated.
MODEL_FACTORS = [
    "age",
    "sex",
    "treatment",
    "hbv",
    "cirrhosis",
    "child_pugh",
    "bclc",
    "max_diameter_mm",
    "lesion_number",
    "afp_ng_ml",
    *RADIOLOGICAL,
    "enhancement_ratio",
]
CONTINUOUS = [c for c in MODEL_FACTORS if CANONICAL[c].table1 == "continuous"]


# --------------------------------------------------------------------------- groupings


def levels(column: str) -> tuple:
    """The tabulated levels of a factor, in order (groups for lesion number and AFP)."""
    if column == "lesion_number":
        return LESION_GROUPS
    if column == "afp_ng_ml":
        return AFP_GROUPS
    return CANONICAL[column].codes


def lesion_group(x):
    """Lesion number as tabulated: 1, 2, 3, >3."""
    import pandas as pd

    v = pd.to_numeric(pd.Series(x), errors="coerce")
    out = pd.Series(pd.NA, index=v.index, dtype="object")
    out[v == 1] = "1"
    out[v == 2] = "2"
    out[v == 3] = "3"
    out[v > 3] = ">3"
    return out


def afp_group(x):
    """AFP (ng/mL) as tabulated: <25, 25-400, >400."""
    import pandas as pd

    v = pd.to_numeric(pd.Series(x), errors="coerce")
    out = pd.Series(pd.NA, index=v.index, dtype="object")
    out[v < 25] = "<25"
    out[(v >= 25) & (v <= 400)] = "25-400"
    out[v > 400] = ">400"
    return out


def as_code(value) -> str | None:
    """A cell as a code string: 1.0 -> '1', ' A ' -> 'A', NaN / '' / 'NA' -> None."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text if text and text.upper() not in ("NA", "NAN") else None


def tabulated(df, column: str):
    """A column as the paper tabulates it: grouped, coded as strings, or numeric."""
    import pandas as pd

    if column == "lesion_number":
        return lesion_group(df[column]).set_axis(df.index)
    if column == "afp_ng_ml":
        return afp_group(df[column]).set_axis(df.index)
    factor = CANONICAL.get(column)
    if factor is not None and factor.table1 == "continuous":
        return pd.to_numeric(df[column], errors="coerce")
    return df[column].map(lambda v: pd.NA if as_code(v) is None else as_code(v)).astype("object")


def level_order(factor: str, present) -> list:
    """Levels of a factor in their canonical order (known levels first), others sorted."""
    import pandas as pd

    known = levels(factor) if factor in CANONICAL else ()
    present = [lv for lv in present if not pd.isna(lv)]
    return [lv for lv in known if lv in present] + sorted(lv for lv in present if lv not in known)


# Paper section 3.3: the best model's AUC within each level of these factors, with
# unpaired DeLong tests between levels. Cut-offs of continuous factors are fixed here.
SUBGROUP_AGE_YEARS = 60.0
SUBGROUP_DIAMETER_MM = 50.0


def subgroup_levels(df) -> dict:
    """Factor -> level label per patient (NA when the factor is missing)."""
    import pandas as pd

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


# --------------------------------------------------------------------------- encoding


def _pool_target(column: str, level: str, present: list[str], reference: str) -> str:
    """Where a level absent from training goes (module docstring)."""
    order = list(levels(column))
    if not CANONICAL[column].ordered:
        return reference
    i = order.index(level)
    return min(present, key=lambda p: (abs(order.index(p) - i), -order.index(p)))


class Encoding:
    """The model encoding of the clinical factors, fitted on the training centers only.

    Continuous factors enter per unit; a categorical factor enters as one dummy per level
    present in training, against its first code (reference). A factor that is absent,
    entirely NA or constant in training is dropped (``dropped``, with the reason). Missing
    values are imputed with the training median (continuous) or most frequent level; levels
    absent from training are pooled as the module docstring says (``pooled``). ``mean`` and
    ``sd`` (ddof 0) of each column of the training matrix standardise it.
    """

    def __init__(self, terms, dropped, pooled, mean, sd):
        self.terms, self.dropped, self.pooled = terms, dropped, pooled
        self.mean, self.sd = list(mean), list(sd)

    @property
    def names(self) -> list[str]:
        return [t["term"] for t in self.terms]

    @property
    def columns(self) -> list[str]:
        """The canonical columns the encoding reads, each once."""
        return list(dict.fromkeys(t["column"] for t in self.terms))

    @classmethod
    def fit(cls, train, factors=MODEL_FACTORS) -> "Encoding":
        terms, dropped, pooled = [], [], {}
        for col in factors:
            if col not in CANONICAL or col not in MODEL_FACTORS:
                raise ValueError(f"{col!r} is not a model factor (one of {MODEL_FACTORS})")
            if col not in train or train[col].isna().all():
                dropped.append({"column": col, "reason": "absent or entirely NA in the training tables"})
                continue
            values = tabulated(train, col)
            observed = values.dropna()
            if observed.nunique() < 2:
                dropped.append({"column": col,
                                "reason": f"no variation in training (only {observed.iloc[0]!r})"})
                continue
            n_missing = int(values.isna().sum())
            if col in CONTINUOUS:
                terms.append({"term": col, "column": col, "kind": "continuous",
                              "impute": float(observed.astype(float).median()),
                              "n_imputed": n_missing})
                continue
            allowed = levels(col)
            unknown = sorted(set(observed) - set(allowed))
            if unknown:
                raise InputError(f"unknown code(s) {unknown} (expected {list(allowed)})", column=col,
                                 fix="map the column to the canonical codes at ingestion")
            mode = observed.value_counts().sort_index().idxmax()
            present = [lv for lv in allowed if (observed == lv).any()]
            ref = allowed[0]
            for level in allowed[1:]:
                if level not in present:
                    target = _pool_target(col, level, present, ref)
                    pooled.setdefault(col, {})[level] = target
                    dropped.append({"column": f"{col}[{level}]",
                                    "reason": f"level absent in training: pooled with {target}"})
                    continue
                terms.append({"term": f"{col}[{level}]", "column": col, "kind": "dummy",
                              "level": level, "reference": ref, "impute": mode,
                              "n_imputed": n_missing})
        enc = cls(terms, dropped, pooled, [], [])
        x = enc.matrix(train)
        enc.mean, enc.sd = x.mean(axis=0).tolist(), x.std(axis=0, ddof=0).tolist()
        return enc

    def matrix(self, df, center=None, path=None):
        """Per-unit design matrix (n, len(terms)), NA imputed with the training value."""
        import numpy as np
        import pandas as pd

        cols, done = [], {}
        where = f"center {center}, " if center else ""
        for t in self.terms:
            col = t["column"]
            if col not in done:
                values = (tabulated(df, col) if col in df
                          else pd.Series(pd.NA, index=df.index, dtype="object"))
                n_na = int(values.isna().sum())
                if n_na:
                    log.info("%s%s: %d missing value(s) imputed with the training value %r",
                             where, col, n_na, t["impute"])
                values = values.astype(object).where(values.notna(), t["impute"])
                if t["kind"] == "dummy":
                    values = self._pool(values, col, df, center, path)
                done[col] = values
            v = done[col]
            if t["kind"] == "continuous":
                cols.append(pd.to_numeric(v).to_numpy(float))
            else:
                cols.append((v == t["level"]).to_numpy(float))
        return np.column_stack(cols) if cols else np.empty((len(df), 0))

    def _pool(self, values, col, df, center, path):
        known = set(levels(col))
        bad = values[~values.isin(known)]
        if len(bad):
            pid = df.loc[bad.index[0], "patient_id"] if "patient_id" in df else None
            raise InputError(f"unknown code {bad.iloc[0]!r} (expected {sorted(known)})",
                             center=center, patient=pid, column=col, path=path)
        for level, target in self.pooled.get(col, {}).items():
            hit = values == level
            if hit.any():
                log.warning("%s%s: %d patient(s) with %s %s pooled with %s (no training "
                            "patient has %s)", f"center {center}, " if center else "",
                            col, int(hit.sum()), col, level, target, level)
                values = values.where(~hit, target)
        return values

    def standardized(self, df, center=None, path=None):
        """The design matrix standardised by the training mean and SD (constant columns: 0)."""
        import numpy as np

        x = self.matrix(df, center=center, path=path)
        sd = np.where(np.asarray(self.sd) > 0, self.sd, 1.0)
        return (x - np.asarray(self.mean)) / sd

    def to_dict(self) -> dict:
        return {"terms": self.terms, "dropped": self.dropped, "pooled": self.pooled,
                "mean": self.mean, "sd": self.sd}

    @classmethod
    def from_dict(cls, d: dict) -> "Encoding":
        return cls(d["terms"], d.get("dropped", []), d.get("pooled", {}), d["mean"], d["sd"])
