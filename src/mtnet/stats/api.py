"""The statistics API (paper section 2.8). Names are stable; each takes ``engine="r"`` (the
reference the report uses: pROC, Hmisc, rms, survival through rpy2) or ``engine="python"``
(an independent implementation) and returns a record of :mod:`mtnet.stats.results`.

Inputs are checked at the door: a degenerate input (NaN, one class only, all-equal risks,
fewer than two events or non-events, risks outside [0, 1], an empty or single group, no
event in a survival group) raises :class:`DegenerateInput` naming the argument, never a
silent number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtnet.seeds import rng
from mtnet.stats import py_engine
from mtnet.stats.results import (
    AUCResult,
    CalibrationResult,
    CoxResult,
    DegenerateInput,
    DeLongResult,
    IDIResult,
    KMResult,
    NRIResult,
    YoudenResult,
)

ENGINES = ("r", "python")
# Risks are clipped to [EPS, 1 - EPS] where a logit is taken (calibration), in both engines.
EPS = 1e-8


# ------------------------------------------------------------------------------ checks


def _engine(engine: str):
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "r":
        from mtnet.stats import r_engine

        return r_engine
    return None


def _outcome(y, name="y") -> np.ndarray:
    arr = np.asarray(y, dtype=float).ravel()
    if arr.size == 0:
        raise DegenerateInput(f"{name} is empty")
    if np.isnan(arr).any():
        raise DegenerateInput(f"{name} has {int(np.isnan(arr).sum())} missing value(s)")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise DegenerateInput(f"{name} must be 0/1, found {sorted(set(arr) - {0.0, 1.0})[:3]}")
    return arr


def _both_classes(y, name="y", minimum=2):
    events, non = int(y.sum()), int(len(y) - y.sum())
    if events < minimum or non < minimum:
        raise DegenerateInput(
            f"{name} has {events} event(s) and {non} non-event(s); at least {minimum} of each "
            f"are needed"
        )


def _risk(p, n, name="p", probability=True, constant_ok=False) -> np.ndarray:
    arr = np.asarray(p, dtype=float).ravel()
    if arr.size != n:
        raise DegenerateInput(f"{name} has {arr.size} values, the outcome {n}")
    if not np.isfinite(arr).all():
        raise DegenerateInput(
            f"{name} has {int((~np.isfinite(arr)).sum())} missing or infinite value(s)"
        )
    if probability and ((arr < 0).any() or (arr > 1).any()):
        raise DegenerateInput(f"{name} must be probabilities in [0, 1]")
    if not constant_ok and np.ptp(arr) == 0:
        raise DegenerateInput(
            f"{name}: all risks are equal ({arr[0]:g}); no discrimination to measure"
        )
    return arr


def _binary_data(y, p, name="p", **kw):
    y = _outcome(y)
    _both_classes(y)
    return y, _risk(p, len(y), name, **kw)


# ----------------------------------------------------------------------- discrimination


# Specificities of the ROC band: every 0.02 (pROC's ci.se default is every 0.1).
BAND_SPECIFICITIES = np.linspace(0.0, 1.0, 51)


def auc_ci(
    y,
    p,
    *,
    conf_level: float = 0.95,
    engine: str = "r",
    band_seed: int | None = None,
    boot_n: int = 2000,
    specificities=None,
) -> AUCResult:
    """AUC with the DeLong (1988) CI: AUC +/- z * sqrt(S10/m + S01/n), clipped to [0, 1].

    ``roc``: the empirical ROC curve at pROC's thresholds (-inf, midpoints of consecutive
    distinct risks, +inf; positive when risk >= threshold). With ``band_seed`` (derive it
    from the config's master seed, e.g. ``derive_seed(seed, center, model)``), ``band``: the
    pointwise ``conf_level`` band of the sensitivity at ``specificities`` (default every
    0.02) from ``boot_n`` stratified bootstrap resamples, as pROC's ``ci.se``: quantiles of
    the resampled curves' sensitivity (linear interpolation between ROC points). The
    resamples are drawn here from ``mtnet.seeds.rng(band_seed, "roc_band")`` and handed to
    the engine, so both engines give the same band.
    """
    y, p = _binary_data(y, p, probability=False)
    r = _engine(engine)
    out = r.call("mtnet_auc_ci", y, p, conf_level) if r else py_engine.auc_ci(y, p, conf_level)
    roc = pd.DataFrame(
        {
            "threshold": np.atleast_1d(out["roc_threshold"]),
            "fpr": np.atleast_1d(out["roc_fpr"]),
            "tpr": np.atleast_1d(out["roc_tpr"]),
        }
    )
    band = pd.DataFrame(columns=["specificity", "fpr", "tpr_low", "tpr_median", "tpr_high"])
    if band_seed is not None:
        band = _roc_band(y, p, conf_level, band_seed, boot_n, specificities, r)
    return AUCResult(
        out["auc"], out["ci_low"], out["ci_high"], len(y), int(y.sum()), engine, roc, band
    )


def _roc_band(y, p, conf_level, seed, boot_n, specificities, r) -> pd.DataFrame:
    sp = BAND_SPECIFICITIES if specificities is None else np.asarray(specificities, float)
    sp = np.sort(np.atleast_1d(sp).ravel())
    if sp.size == 0 or (sp < 0).any() or (sp > 1).any():
        raise DegenerateInput("specificities of the ROC band must be non-empty, in [0, 1]")
    if int(boot_n) < 2:
        raise DegenerateInput(f"boot_n must be at least 2, got {boot_n}")
    boot_n = int(boot_n)
    gen = rng(seed, "roc_band")
    m, n = int(y.sum()), int(len(y) - y.sum())
    idx_cases = gen.integers(0, m, size=(boot_n, m))
    idx_controls = gen.integers(0, n, size=(boot_n, n))
    if r:
        out = r.call(
            "mtnet_roc_band",
            y,
            p,
            idx_cases.ravel() + 1,
            idx_controls.ravel() + 1,
            boot_n,
            sp,
            conf_level,
        )
    else:
        out = py_engine.roc_band(y, p, idx_cases, idx_controls, sp, conf_level)
    band = pd.DataFrame(
        {
            "specificity": np.atleast_1d(out["specificity"]),
            "fpr": 1 - np.atleast_1d(out["specificity"]),
            "tpr_low": np.atleast_1d(out["tpr_low"]),
            "tpr_median": np.atleast_1d(out["tpr_median"]),
            "tpr_high": np.atleast_1d(out["tpr_high"]),
        }
    )
    band.attrs.update(boot_n=boot_n, conf_level=conf_level, seed=seed)
    return band


def delong_test(y, p1, p2, *, engine: str = "r") -> DeLongResult:
    """Paired DeLong test of AUC(p1) - AUC(p2) on the same patients (DeLong 1988), with the
    95% CI of the difference."""
    y, p1 = _binary_data(y, p1, "p1", probability=False)
    p2 = _risk(p2, len(y), "p2", probability=False)
    _, x1, w1 = py_engine._placements(y, p1)
    _, x2, w2 = py_engine._placements(y, p2)
    if py_engine._delong_var(x1 - x2, w1 - w2) <= 0:
        raise DegenerateInput(
            "p1 and p2 have identical DeLong placements (zero variance of the "
            "AUC difference, e.g. the same ranking): no test"
        )
    r = _engine(engine)
    out = r.call("mtnet_delong_paired", y, p1, p2) if r else py_engine.delong_paired(y, p1, p2)
    return DeLongResult(out["auc1"], out["auc2"], out["z"], out["p"], True, engine,
                        diff_ci_low=out["diff_ci_low"], diff_ci_high=out["diff_ci_high"])


def delong_test_unpaired(y1, p1, y2, p2, *, engine: str = "r") -> DeLongResult:
    """Unpaired DeLong test of two AUCs from different patients (pROC: t statistic with a
    Welch-Satterthwaite df); ``z`` holds that statistic."""
    y1, p1 = _binary_data(y1, p1, "p1", probability=False)
    y2 = _outcome(y2, "y2")
    _both_classes(y2, "y2")
    p2 = _risk(p2, len(y2), "p2", probability=False)
    variances = [
        py_engine._delong_var(*py_engine._placements(y, p)[1:]) for y, p in ((y1, p1), (y2, p2))
    ]
    if sum(variances) <= 0:
        raise DegenerateInput(
            "both AUCs have zero DeLong variance (perfect or constant "
            "ranking in both groups): no test"
        )
    r = _engine(engine)
    out = (
        r.call("mtnet_delong_unpaired", y1, p1, y2, p2)
        if r
        else py_engine.delong_unpaired(y1, p1, y2, p2)
    )
    return DeLongResult(
        out["auc1"], out["auc2"], out["statistic"], out["p"], False, engine, out["df"]
    )


def nri(y, p_old, p_new, cutoffs=None, *, engine: str = "r") -> NRIResult:
    """Net reclassification improvement of p_new over p_old (Pencina 2008).

    NRI = [P(up|event) - P(down|event)] + [P(down|non-event) - P(up|non-event)];
    continuous (any change of risk) when ``cutoffs`` is None, else categorical between the
    risk categories [0, c1), [c1, c2), ... z from the variance of Pencina et al.
    """
    y, p_old = _binary_data(y, p_old, "p_old", constant_ok=True)
    p_new = _risk(p_new, len(y), "p_new", constant_ok=True)
    r = _engine(engine)
    if cutoffs is None:
        kind, cuts = "continuous", ()
        out = r.call("mtnet_improve", y, p_old, p_new) if r else py_engine.improve(y, p_old, p_new)
    else:
        kind, cuts = "categorical", tuple(float(c) for c in np.atleast_1d(cutoffs))
        if not cuts or any(not 0 < c < 1 for c in cuts) or list(cuts) != sorted(cuts):
            raise DegenerateInput(f"cutoffs must be increasing values in (0, 1), got {cuts}")
        out = (
            r.call("mtnet_nri_categorical", y, p_old, p_new, list(cuts))
            if r
            else py_engine.nri_categorical(y, p_old, p_new, cuts)
        )
    if not np.isfinite(out["z_nri"]):
        raise DegenerateInput(
            f"{kind} NRI: no patient is reclassified (NRI = 0 with zero " f"variance): no test"
        )
    return NRIResult(
        out["nri"],
        out["nri_events"],
        out["nri_nonevents"],
        out["z_nri"],
        out["p_nri"],
        kind,
        cuts,
        engine,
    )


def idi(y, p_old, p_new, *, engine: str = "r") -> IDIResult:
    """IDI = [mean p_new - mean p_old]_events - [mean p_new - mean p_old]_non-events,
    z = IDI / sqrt(var(d_ev)/n_ev + var(d_ne)/n_ne) (Pencina 2008)."""
    y, p_old = _binary_data(y, p_old, "p_old", constant_ok=True)
    p_new = _risk(p_new, len(y), "p_new", constant_ok=True)
    d = p_new - p_old
    if np.ptp(d[y == 1]) < 1e-12 and np.ptp(d[y == 0]) < 1e-12:
        raise DegenerateInput("IDI: p_new - p_old has zero variance in both classes: no test")
    r = _engine(engine)
    out = r.call("mtnet_improve", y, p_old, p_new) if r else py_engine.improve(y, p_old, p_new)
    if not np.isfinite(out["z_idi"]):
        raise DegenerateInput("IDI: p_new - p_old has zero variance in both classes: no test")
    return IDIResult(
        out["idi"], out["idi_events"], out["idi_nonevents"], out["z_idi"], out["p_idi"], engine
    )


# ------------------------------------------------------------------------- calibration


def calibration(
    y, p, *, bins: int = 10, conf_level: float = 0.95, engine: str = "r"
) -> CalibrationResult:
    """Calibration: intercept a and slope b of logit P(y) = a + b logit(p) (rms::val.prob),
    Brier = mean (p - y)^2, Hosmer-Lemeshow chi2 over ``bins`` quantile groups (df = groups
    - 2), and the binned curve (mean predicted vs observed per group, with the Wilson score
    interval of the observed proportion at ``conf_level``). ``smooth``: the lowess curve
    rms::val.prob draws (R's ``lowess(p, y, iter = 0)``: f = 2/3, no robustness
    iterations). Risks are clipped to [1e-8, 1 - 1e-8] for the logit."""
    y, p = _binary_data(y, p)
    p = np.clip(p, EPS, 1 - EPS)
    if bins < 2:
        raise DegenerateInput(f"bins must be at least 2, got {bins}")
    r = _engine(engine)
    out = (
        r.call("mtnet_calibration", y, p, bins, conf_level)
        if r
        else py_engine.calibration(y, p, bins, conf_level)
    )
    curve = pd.DataFrame(
        {
            "bin": np.arange(1, len(np.atleast_1d(out["bin_n"])) + 1),
            "n": np.atleast_1d(out["bin_n"]).astype(int),
            "mean_predicted": np.atleast_1d(out["bin_predicted"]),
            "observed": np.atleast_1d(out["bin_observed"]),
            "n_events": np.round(np.atleast_1d(out["bin_events"])).astype(int),
            "observed_low": np.atleast_1d(out["bin_low"]),
            "observed_high": np.atleast_1d(out["bin_high"]),
        }
    )
    smooth = pd.DataFrame(
        {
            "predicted": np.atleast_1d(out["smooth_predicted"]),
            "observed": np.atleast_1d(out["smooth_observed"]),
        }
    )
    return CalibrationResult(
        out["intercept"],
        out["slope"],
        out["brier"],
        out["hl_chi2"],
        int(out["hl_df"]),
        out["hl_p"],
        engine,
        curve,
        smooth,
    )


def net_benefit(y, p, thresholds, *, engine: str = "r") -> pd.DataFrame:
    """Decision curve (Vickers & Elkin 2006): NB(pt) = TP/n - FP/n * pt / (1 - pt) with
    patients positive when p >= pt; treat-all = prevalence - (1 - prevalence) pt/(1 - pt);
    treat-none = 0. Columns: threshold, net_benefit, treat_all, treat_none."""
    y = _outcome(y)
    p = _risk(p, len(y), constant_ok=True)
    t = np.asarray(thresholds, dtype=float).ravel()
    if t.size == 0 or (t <= 0).any() or (t >= 1).any():
        raise DegenerateInput("thresholds must be non-empty and strictly inside (0, 1)")
    r = _engine(engine)
    out = r.call("mtnet_net_benefit", y, p, t) if r else py_engine.net_benefit(y, p, t)
    cols = ("threshold", "net_benefit", "treat_all", "treat_none")
    return pd.DataFrame({c: np.atleast_1d(out[c]) for c in cols})


def youden_threshold(y, p, *, engine: str = "r") -> YoudenResult:
    """Threshold maximising Youden's J = sensitivity + specificity - 1 over the midpoints of
    consecutive distinct risks (pROC ``coords(best.method="youden")``); high risk is risk >
    threshold; among tied optima the lowest threshold."""
    y, p = _binary_data(y, p, probability=False)
    r = _engine(engine)
    out = r.call("mtnet_youden", y, p) if r else py_engine.youden(y, p)
    sens, spec = out["sensitivity"], out["specificity"]
    return YoudenResult(out["threshold"], sens, spec, sens + spec - 1, engine)


# ---------------------------------------------------------------------------- survival


def _survival_data(time, event, group):
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event, dtype=float).ravel()
    g = np.asarray(group).ravel()
    if not (len(t) == len(e) == len(g)):
        raise DegenerateInput(f"time, event and group have lengths {len(t)}, {len(e)}, {len(g)}")
    if len(t) == 0:
        raise DegenerateInput("no patients")
    if not np.isfinite(t).all() or (t < 0).any():
        raise DegenerateInput("time has missing, infinite or negative values")
    e = _outcome(e, "event")
    if pd.isna(pd.Series(g)).any():
        raise DegenerateInput("group has missing values")
    levels = sorted(set(g.tolist()))
    if len(levels) < 2:
        raise DegenerateInput(
            f"group has {len(levels)} level(s) ({levels}); two or more are needed"
        )
    if e.sum() == 0:
        raise DegenerateInput("no events: survival cannot be compared")
    return t, e, g, levels


def km_logrank(
    time, event, group, *, risk_times=None, conf_level: float = 0.95, engine: str = "r"
) -> KMResult:
    """Kaplan-Meier median per group (NaN = not reached) and the log-rank test
    (chi2 on k - 1 df; Mantel 1966, as survival::survdiff).

    ``curves``: each group's step function (survival::survfit / lifelines) from t = 0, with
    the log-log pointwise ``conf_level`` band (Greenwood variance; [1, 1] where S = 1, NaN
    where S = 0); ``at_risk``: the number of patients with time >= t at ``risk_times``
    (default 0, 365, 730, ... days up to the longest time)."""
    t, e, g, _ = _survival_data(time, event, group)
    if risk_times is None:
        risk_times = np.arange(0.0, t.max() + 1e-9, 365.0)
    risk_times = np.atleast_1d(np.asarray(risk_times, dtype=float)).ravel()
    if risk_times.size == 0 or not np.isfinite(risk_times).all() or (risk_times < 0).any():
        raise DegenerateInput("risk_times must be non-empty, finite and >= 0")
    risk_times = np.sort(risk_times)
    r = _engine(engine)
    gs = np.asarray([str(v) for v in g])
    out = (
        r.call("mtnet_km_logrank", t, e, gs, risk_times, conf_level)
        if r
        else py_engine.km_logrank(t, e, gs, risk_times, conf_level)
    )
    groups = pd.DataFrame(
        {
            "group": _strings(out["group"]),
            "n": np.atleast_1d(out["n"]).astype(int),
            "events": np.atleast_1d(out["events"]).astype(int),
            "median": np.atleast_1d(out["median"]),
        }
    )
    curves = pd.DataFrame(
        {
            "group": _strings(out["curve_group"]),
            "time": np.atleast_1d(out["curve_time"]),
            **{
                k: np.round(np.atleast_1d(out[f"curve_{k}"])).astype(int)
                for k in ("n_risk", "n_event", "n_censor")
            },
            **{k: np.atleast_1d(out[f"curve_{k}"]) for k in ("survival", "lower", "upper")},
        }
    )
    at_risk = pd.DataFrame(
        {
            "group": _strings(out["risk_group"]),
            "time": np.atleast_1d(out["risk_time"]),
            "n_risk": np.round(np.atleast_1d(out["risk_n"])).astype(int),
        }
    )
    return KMResult(out["chi2"], int(out["df"]), out["p"], engine, groups, curves, at_risk)


def _strings(value) -> list[str]:
    """An engine's string vector (R's length-1 vectors come back as a one-item list)."""
    return [str(v) for v in value] if isinstance(value, (list, tuple, np.ndarray)) else [value]


def cox_hr(time, event, group, *, conf_level: float = 0.95, engine: str = "r") -> CoxResult:
    """Cox proportional hazards (Efron ties) of a two-level group: HR of the second level
    vs the first (sorted; 0/1 or False/True: HR of 1 vs 0), Wald CI and p. A group level
    without events makes the HR infinite or zero: DegenerateInput."""
    t, e, g, levels = _survival_data(time, event, group)
    if len(levels) != 2:
        raise DegenerateInput(f"cox_hr needs exactly two groups, got {len(levels)}")
    x = (g == levels[1]).astype(float)
    for lv, mask in ((levels[0], x == 0), (levels[1], x == 1)):
        if e[mask].sum() == 0:
            raise DegenerateInput(f"group {lv!r} has no events: the hazard ratio is not estimable")
    r = _engine(engine)
    out = r.call("mtnet_cox", t, e, x, conf_level) if r else py_engine.cox(t, e, x, conf_level)
    return CoxResult(
        out["coef"], out["se"], out["hr"], out["ci_low"], out["ci_high"], out["p"], engine
    )
