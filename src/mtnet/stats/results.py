"""Small typed records returned by the statistics API (one per method).

Every record has ``engine`` (``"r"`` or ``"python"``) and a ``summary`` property: a one-row
DataFrame of its scalar fields, so results of both engines line up in a table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd

from mtnet.errors import InputError


class DegenerateInput(InputError):
    """The data cannot support the statistic (one class, equal risks, no events, ...)."""


class _Record:
    @property
    def summary(self) -> pd.DataFrame:
        row = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not isinstance(getattr(self, f.name), (pd.DataFrame, list, tuple, dict))
        }
        return pd.DataFrame([row])


@dataclass
class AUCResult(_Record):
    """AUC with its DeLong (1988) confidence interval, the ROC curve and, on request, a
    pointwise bootstrap band of the sensitivity at fixed specificities (pROC ``ci.se``)."""

    auc: float
    ci_low: float
    ci_high: float
    n: int
    n_events: int
    engine: str
    # threshold (ascending, -inf first), fpr = 1 - specificity, tpr = sensitivity
    roc: pd.DataFrame = field(default_factory=pd.DataFrame)
    # specificity, fpr, tpr_low, tpr_median, tpr_high; empty unless a band was asked for
    band: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class DeLongResult(_Record):
    """DeLong test of two AUCs: paired (z, normal p) or unpaired (t with Welch-type df)."""

    auc1: float
    auc2: float
    z: float
    p: float
    paired: bool
    engine: str
    df: float = float("nan")
    diff_ci_low: float = float("nan")  # paired: 95% CI of auc1 - auc2
    diff_ci_high: float = float("nan")


@dataclass
class NRIResult(_Record):
    """Net reclassification improvement (Pencina 2008): events, non-events and total."""

    nri: float
    nri_events: float
    nri_nonevents: float
    z: float
    p: float
    kind: str  # "continuous" or "categorical"
    cutoffs: tuple
    engine: str


@dataclass
class IDIResult(_Record):
    """Integrated discrimination improvement (Pencina 2008)."""

    idi: float
    idi_events: float
    idi_nonevents: float
    z: float
    p: float
    engine: str


@dataclass
class CalibrationResult(_Record):
    """Logistic recalibration intercept and slope, Brier score, Hosmer-Lemeshow test, curve."""

    intercept: float
    slope: float
    brier: float
    hl_chi2: float
    hl_df: int
    hl_p: float
    engine: str
    # bin, n, mean_predicted, observed, n_events, observed_low, observed_high (Wilson)
    curve: pd.DataFrame = field(default_factory=pd.DataFrame)
    # predicted (sorted risks, one row per patient), observed (lowess, as rms::val.prob)
    smooth: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class YoudenResult(_Record):
    """Threshold maximising sensitivity + specificity - 1 (positive when risk > threshold)."""

    threshold: float
    sensitivity: float
    specificity: float
    youden: float
    engine: str


@dataclass
class KMResult(_Record):
    """Kaplan-Meier medians, step functions and numbers at risk per group; log-rank test."""

    chi2: float
    df: int
    p: float
    engine: str
    groups: pd.DataFrame = field(default_factory=pd.DataFrame)  # group, n, events, median
    # group, time (0 first, then each distinct time of the group), n_risk, n_event,
    # n_censor, survival, lower, upper (log-log CI)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    # group, time, n_risk = number with time >= t (survival::summary.survfit)
    at_risk: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class CoxResult(_Record):
    """Cox proportional hazards (Efron ties) of a binary group: HR of group 1 vs group 0."""

    coef: float
    se: float
    hr: float
    ci_low: float
    ci_high: float
    p: float
    engine: str
