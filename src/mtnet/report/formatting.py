"""Journal number formats shared by the report's tables and figures.

AUC and other [0, 1] statistics with 3 decimals, intervals as ``0.812 [0.701–0.902]``
(en dash), p-values as ``< 0.001`` or 3 significant digits, hazard ratios with 3 decimals,
counts as integers, a missing value as an em dash. Names are the paper's terms.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from mtnet.factors import BINARY, CANONICAL

DASH = "—"  # a missing value
EN_DASH = "–"  # inside an interval
SYNTHETIC_BANNER = "SYNTHETIC DATA — not patient results"

# Display names of the canonical factors (DESIGN.md section 2); others are shown as named.
VARIABLE_LABELS = {
    "age": "Age (years)",
    "sex": "Sex",
    "treatment": "Initial treatment",
    "hbv": "HBV infection",
    "cirrhosis": "Cirrhosis",
    "child_pugh": "Child-Pugh class",
    "bclc": "BCLC stage",
    "max_diameter_mm": "Max diameter (mm)",
    "lesion_number": "Number of lesions",
    "afp_ng_ml": "AFP (ng/mL)",
    "fusion_lesions": "Fusion lesions",
    "invasive_shape": "Invasive shape",
    "capsule": "Capsule",
    "capsule_breakthrough": "Capsule breakthrough",
    "corona_enhancement": "Corona enhancement",
    "corona_low_attenuation": "Corona low attenuation",
    "mosaic_architecture": "Mosaic architecture",
    "nodule_in_nodule": "Nodule in nodule",
    "enhancement_ratio": "Enhancement ratio",
    "mvi": "MVI during follow-up",
}
LEVEL_LABELS = {
    "sex": {"M": "Male", "F": "Female"},
    "treatment": {"resection": "Liver resection", "TACE": "TACE", "ablation": "Ablation"},
}
BINARY_LABELS = {"0": "No", "1": "Yes"}
# Coded 0/1 factors whose levels print as No/Yes (BCLC "0" is a stage, not a no).
BINARY_VARIABLES = {name for name, f in CANONICAL.items()
                    if f.kind == "code" and f.codes == BINARY and f.table1 is not None}
ENDPOINT_LABELS = {"time_to_mvi": "Time to MVI", "os": "Overall survival"}


def missing(x) -> bool:
    """NaN, None, pd.NA or the TSV's ``NA``."""
    if x is None or (isinstance(x, str) and x.strip() in ("", "NA")):
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def fmt_decimal(x, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals; a missing value as an em dash."""
    if missing(x):
        return DASH
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    text = f"{x:.{digits}f}"
    return "0." + "0" * digits if text == "-0." + "0" * digits else text


def fmt_auc(x) -> str:
    """AUC (or another [0, 1] statistic) with 3 decimals."""
    return fmt_decimal(x, 3)


def fmt_ci(estimate, low, high, digits: int = 3) -> str:
    """``0.812 [0.701–0.902]``; the interval is left out when either bound is missing."""
    est = fmt_decimal(estimate, digits)
    if est == DASH:
        return DASH
    if missing(low) or missing(high):
        return est
    return f"{est} [{fmt_decimal(low, digits)}{EN_DASH}{fmt_decimal(high, digits)}]"


def fmt_p(p) -> str:
    """``< 0.001`` below one in a thousand, else 3 significant digits (``0.0457``, ``0.500``)."""
    if missing(p):
        return DASH
    p = float(p)
    if p < 0.001:
        return "< 0.001"
    return f"{p:#.3g}".rstrip(".")


def p_equals(p) -> str:
    """``p < 0.001`` or ``p = 0.0457`` (``p = —`` when missing)."""
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def fmt_hr(hr, low=None, high=None) -> str:
    """Hazard ratio with its interval, 3 decimals: ``0.073 [0.032–0.167]``."""
    return fmt_ci(hr, low, high, 3)


def fmt_count(x) -> str:
    """A count as an integer (TSVs hold counts as floats where a column has NA)."""
    if missing(x):
        return DASH
    return str(int(round(float(x))))


def fmt_days(x) -> str:
    """A number of days as an integer."""
    return fmt_count(x)


# Display order of levels where the analyses' order (known codes, then sorted) reads badly.
LEVEL_ORDER = {"lesion_number": ["single", "multiple"]}


def display_order(variable: str, levels: list[str]) -> list[int]:
    """Positions of ``levels`` in display order (known levels first, the rest as given)."""
    known = LEVEL_ORDER.get(variable, [])
    first = [levels.index(k) for k in known if k in levels]
    return first + [i for i in range(len(levels)) if i not in first]


def variable_label(name: str) -> str:
    return VARIABLE_LABELS.get(name, name)


def level_label(variable: str, level) -> str:
    """A factor level as printed: coded readings 0/1 as No/Yes, ``<=60y`` as ``≤ 60 y``."""
    text = str(level)
    if variable in LEVEL_LABELS and text in LEVEL_LABELS[variable]:
        return LEVEL_LABELS[variable][text]
    if variable in BINARY_VARIABLES and text in BINARY_LABELS:
        return BINARY_LABELS[text]
    if re.fullmatch(r"\d+(\.\d+)?-\d+(\.\d+)?", text):
        return text.replace("-", EN_DASH)
    for raw, nice in (("<=", "≤ "), (">=", "≥ "), ("<", "< "), (">", "> ")):
        if text.startswith(raw):
            rest = text[len(raw) :]
            for unit in ("mm", "y"):
                if rest.endswith(unit) and rest[: -len(unit)].replace(".", "").isdigit():
                    rest = f"{rest[: -len(unit)]} {unit}"
            return nice + rest
    return text
