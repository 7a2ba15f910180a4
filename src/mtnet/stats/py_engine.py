"""The Python engine: an independent implementation of every method of engine.R.

Written from the references, not translated from R code, and kept because two engines that
agree to 1e-6 on the same data are the best test either has (tests/test_stats_engines.py).
Each function returns the same dict keys as its ``mtnet_*`` counterpart in engine.R.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

# ----------------------------------------------------------------- DeLong (Sun & Xu 2014)


def _placements(y: np.ndarray, p: np.ndarray):
    """AUC and DeLong structural components by midranks (Sun & Xu 2014, fast DeLong).

    For the m cases X and n controls Y, with midranks T_Z (pooled), T_X, T_Y:
    AUC = (sum T_Z[cases] - m(m+1)/2) / (mn); V10_i = (T_Z[i] - T_X[i]) / n for cases;
    V01_j = 1 - (T_Z[j] - T_Y[j]) / m for controls (ties count 1/2).
    """
    x = p[y == 1]
    z = p[y == 0]
    m, n = len(x), len(z)
    tz = sps.rankdata(np.concatenate([x, z]))
    tx = sps.rankdata(x)
    ty = sps.rankdata(z)
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    return auc, v10, v01


def _delong_var(v10, v01) -> float:
    return np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01)


def auc_ci(y, p, conf_level):
    auc, v10, v01 = _placements(y, p)
    q = sps.norm.ppf(1 - (1 - conf_level) / 2)
    se = np.sqrt(_delong_var(v10, v01))
    thresholds = _roc_thresholds(p)
    tpr, spec = _sens_spec(p[y == 1], p[y == 0])
    return {
        "auc": auc,
        "ci_low": max(auc - q * se, 0.0),
        "ci_high": min(auc + q * se, 1.0),
        "n_cases": float(len(v10)),
        "n_controls": float(len(v01)),
        "roc_threshold": thresholds,
        "roc_fpr": 1 - spec,
        "roc_tpr": tpr,
    }


# ------------------------------------------------------------------ ROC curve and band


def _roc_thresholds(values):
    """pROC's thresholds (direction "<"): -inf, the midpoints of consecutive distinct
    values, +inf; a midpoint that rounds onto the lower value moves to the upper one."""
    u = np.unique(values)
    lo, hi = np.concatenate([[-np.inf], u]), np.concatenate([u, [np.inf]])
    with np.errstate(invalid="ignore", over="ignore"):
        t = (lo + hi) / 2
        t = np.where(np.abs(t) > 1e100, lo / 2 + hi / 2, t)
    for i in np.flatnonzero(np.isin(t, u)):
        if t[i] == u[i - 1]:
            t[i] = u[i]
    return t


def _sens_spec(cases, controls):
    """Sensitivity and specificity at each pROC threshold, ascending: positive when the
    risk is >= the j-th distinct value (j = 0 .. U-1), nobody positive at +inf."""
    u = np.unique(np.concatenate([cases, controls]))
    cs, ct = np.sort(cases), np.sort(controls)
    tp = len(cs) - np.searchsorted(cs, u, side="left")
    tn = np.searchsorted(ct, u, side="left")
    return (
        np.concatenate([tp / len(cs), [0.0]]),
        np.concatenate([tn / len(ct), [1.0]]),
    )


def _sens_at_spec(se, sp, x):
    """pROC ``coords(input="specificity")``: at an exact specificity the first (highest)
    sensitivity, else linear interpolation between the two neighbouring points."""
    i = np.minimum(np.searchsorted(sp, x, side="left"), len(sp) - 1)
    exact = sp[i] == x
    j = np.maximum(i, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prop = (x - sp[j]) / (sp[j - 1] - sp[j])
        inter = se[j] + prop * (se[j - 1] - se[j])
    return np.where(exact, se[i], inter)


def roc_band(y, p, idx_cases, idx_controls, specificities, conf_level):
    """Pointwise bootstrap band of the sensitivity at fixed specificities (pROC ``ci.se``,
    stratified): per resample (rows of ``idx_cases`` into the cases, ``idx_controls`` into
    the controls, 0-based) the ROC curve and its sensitivity at each specificity; the band
    is the (1 - conf_level)/2, 0.5, (1 + conf_level)/2 quantiles (type 7) over resamples."""
    cases, controls = p[y == 1], p[y == 0]
    x = np.asarray(specificities, dtype=float)
    se = np.empty((len(idx_cases), len(x)))
    for b in range(len(idx_cases)):
        tpr, spec = _sens_spec(cases[idx_cases[b]], controls[idx_controls[b]])
        se[b] = _sens_at_spec(tpr, spec, x)
    a = (1 - conf_level) / 2
    q = np.quantile(se, [a, 0.5, 1 - a], axis=0)
    return {"specificity": x, "tpr_low": q[0], "tpr_median": q[1], "tpr_high": q[2]}


def delong_paired(y, p1, p2):
    """z = (A1 - A2) / sqrt(V1 + V2 - 2 C12), S = S10/m + S01/n (DeLong 1988); the 95% CI
    of A1 - A2 is (A1 - A2) +/- 1.96 sqrt(V1 + V2 - 2 C12), as pROC's roc.test."""
    a1, x1, y1 = _placements(y, p1)
    a2, x2, y2 = _placements(y, p2)
    s10 = np.cov(np.vstack([x1, x2]), ddof=1)
    s01 = np.cov(np.vstack([y1, y2]), ddof=1)
    s = s10 / len(x1) + s01 / len(y1)
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z = (a1 - a2) / np.sqrt(var) if var > 0 else np.nan
    half = sps.norm.ppf(0.975) * np.sqrt(var) if var > 0 else np.nan
    return {"auc1": a1, "auc2": a2, "z": z, "p": 2 * sps.norm.sf(abs(z)),
            "diff_ci_low": a1 - a2 - half, "diff_ci_high": a1 - a2 + half}


def delong_unpaired(y1, p1, y2, p2):
    """t = (A1 - A2) / sqrt(V1 + V2), Welch-Satterthwaite df from the two total sizes."""
    a1, x1, w1 = _placements(y1, p1)
    a2, x2, w2 = _placements(y2, p2)
    v1, v2 = _delong_var(x1, w1), _delong_var(x2, w2)
    t = (a1 - a2) / np.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / (len(y1) - 1) + v2**2 / (len(y2) - 1))
    return {"auc1": a1, "auc2": a2, "statistic": t, "df": df, "p": 2 * sps.t.sf(abs(t), df)}


# ------------------------------------------------------------- reclassification (Pencina)


def _nri_part(d: np.ndarray, sign: int):
    """Moves up/down in one class; variance (u + w)/n^2 - (u - w)^2/n^3 (Pencina 2008)."""
    n = len(d)
    up, down = np.sum(d > 0), np.sum(d < 0)
    value = sign * (up - down) / n
    var = (up + down) / n**2 - (up - down) ** 2 / n**3
    return value, var


def improve(y, p_old, p_new):
    """Continuous NRI and IDI (Pencina et al. 2008; 2011)."""
    d = p_new - p_old
    ev, ne = d[y == 1], d[y == 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return _improve(ev, ne)


def _improve(ev, ne):
    nri_ev, v_ev = _nri_part(ev, +1)
    nri_ne, v_ne = _nri_part(ne, -1)
    nri = nri_ev + nri_ne
    z_nri = nri / np.sqrt(v_ev + v_ne)
    idi = ev.mean() - ne.mean()
    se_idi = np.sqrt(np.var(ev, ddof=1) / len(ev) + np.var(ne, ddof=1) / len(ne))
    z_idi = idi / se_idi
    return {
        "nri": nri,
        "nri_events": nri_ev,
        "nri_nonevents": nri_ne,
        "z_nri": z_nri,
        "p_nri": 2 * sps.norm.sf(abs(z_nri)),
        "idi": idi,
        "z_idi": z_idi,
        "p_idi": 2 * sps.norm.sf(abs(z_idi)),
        "idi_events": ev.mean(),
        "idi_nonevents": -ne.mean(),
    }


def nri_categorical(y, p_old, p_new, cutoffs):
    """Categorical NRI: categories [0, c1), [c1, c2), ..., moves between them."""
    cuts = np.asarray(cutoffs, dtype=float)
    c_old = np.searchsorted(cuts, p_old, side="right").astype(float)
    c_new = np.searchsorted(cuts, p_new, side="right").astype(float)
    return improve(y, c_old, c_new)


# ------------------------------------------------------------------------- calibration


def _logit(p):
    return np.log(p / (1 - p))


def _recalibration(y, p):
    """Intercept a and slope b of logit P(y=1) = a + b logit(p), by Newton-Raphson."""
    x = np.column_stack([np.ones_like(p), _logit(p)])
    beta = np.zeros(2)
    for _ in range(100):
        mu = 1 / (1 + np.exp(-(x @ beta)))
        grad = x.T @ (y - mu)
        hess = (x * (mu * (1 - mu))[:, None]).T @ x
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-12:
            break
    return beta


def hosmer_lemeshow(y, p, g):
    """HL chi2 = sum (O - E)^2 / (E (1 - E/n)) over groups cut at the type-7 quantiles of p
    (as ResourceSelection::hoslem.test), df = groups - 2."""
    br = np.unique(np.quantile(p, np.linspace(0, 1, g + 1)))
    grp = np.maximum(np.searchsorted(br, p, side="left"), 1)
    frame = pd.DataFrame({"g": grp, "y": y, "p": p}).groupby("g")
    n = frame["y"].count().to_numpy(float)
    o = frame["y"].sum().to_numpy(float)
    e = frame["p"].sum().to_numpy(float)
    chi2 = float(np.sum((o - e) ** 2 / (e * (1 - e / n))))
    df = len(n) - 2
    return {
        "chi2": chi2,
        "df": float(df),
        "p": float(sps.chi2.sf(chi2, df)) if df > 0 else np.nan,
        "bin_n": n,
        "bin_observed": o / n,
        "bin_predicted": frame["p"].mean().to_numpy(float),
        "bin_events": o,
    }


def calibration(y, p, g, conf_level):
    from statsmodels.nonparametric.smoothers_lowess import lowess
    from statsmodels.stats.proportion import proportion_confint

    a, b = _recalibration(y, p)
    hl = hosmer_lemeshow(y, p, g)
    low, high = proportion_confint(hl["bin_events"], hl["bin_n"], 1 - conf_level, "wilson")
    # R's lowess(p, y, iter = 0) as rms::val.prob draws it: f = 2/3, delta = 1% of the range
    sm = lowess(y, p, frac=2 / 3, it=0, delta=0.01 * np.ptp(p))
    return {
        "intercept": a,
        "slope": b,
        "brier": float(np.mean((p - y) ** 2)),
        "hl_chi2": hl["chi2"],
        "hl_df": hl["df"],
        "hl_p": hl["p"],
        "bin_n": hl["bin_n"],
        "bin_observed": hl["bin_observed"],
        "bin_predicted": hl["bin_predicted"],
        "bin_events": hl["bin_events"],
        "bin_low": np.asarray(low, float),
        "bin_high": np.asarray(high, float),
        "smooth_predicted": sm[:, 0],
        "smooth_observed": sm[:, 1],
    }


def net_benefit(y, p, thresholds):
    """NB(pt) = TP/n - FP/n * pt/(1-pt), positive when p >= pt (Vickers & Elkin 2006)."""
    t = np.asarray(thresholds, dtype=float)
    pos = p[None, :] >= t[:, None]
    n = len(y)
    tp = (pos & (y == 1)).sum(axis=1) / n
    fp = (pos & (y == 0)).sum(axis=1) / n
    prev = y.mean()
    w = t / (1 - t)
    return {
        "threshold": t,
        "net_benefit": tp - fp * w,
        "treat_all": prev - (1 - prev) * w,
        "treat_none": np.zeros_like(t),
    }


def youden(y, p):
    """Thresholds midway between sorted distinct risks (as pROC); positive when p > t;
    maximise sensitivity + specificity - 1, the lowest threshold among ties."""
    u = np.unique(p)
    cand = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    pos = p[None, :] > cand[:, None]
    sens = (pos & (y == 1)).sum(axis=1) / np.sum(y == 1)
    spec = (~pos & (y == 0)).sum(axis=1) / np.sum(y == 0)
    j = sens + spec - 1
    best = np.flatnonzero(np.isclose(j, j.max(), rtol=0, atol=1e-12))
    i = best[np.argmin(cand[best])]
    return {
        "threshold": cand[i],
        "sensitivity": sens[i],
        "specificity": spec[i],
        "youden": j[i],
    }


# ---------------------------------------------------------------------------- survival


def _km(time, event):
    """Kaplan-Meier at the distinct event times: S(t) = prod (1 - d_i / n_i)."""
    order = np.argsort(time, kind="stable")
    t, e = time[order], event[order]
    ut = np.unique(t[e == 1])
    at_risk = np.array([np.sum(t >= u) for u in ut], dtype=float)
    deaths = np.array([np.sum((t == u) & (e == 1)) for u in ut], dtype=float)
    return ut, np.cumprod(1 - deaths / at_risk)


def km_median(time, event):
    """Median survival as R's survfit: the first time S(t) <= 0.5; where S(t) = 0.5 exactly,
    the midpoint between that time and the next drop. NaN when not reached."""
    ut, s = _km(time, event)
    tol = np.sqrt(np.finfo(float).eps)
    idx = np.flatnonzero(s <= 0.5 + tol)
    if len(idx) == 0:
        return np.nan
    i = idx[0]
    if abs(s[i] - 0.5) < tol:
        later = np.flatnonzero(s < s[i] - tol)
        if len(later):
            return (ut[i] + ut[later[0]]) / 2
    return ut[i]


def km_curves(time, event, group, levels, risk_times, conf_level):
    """Kaplan-Meier step functions by lifelines (a row at t = 0, then each distinct time of
    the group) with the log-log ("exponential Greenwood") band, [1, 1] where S = 1 and NaN
    where S = 0 (as survfit); numbers at risk = patients with time >= t."""
    from lifelines import KaplanMeierFitter

    curve = {k: [] for k in ("group", "time", "n_risk", "n_event", "n_censor")}
    curve.update(survival=[], lower=[], upper=[])
    risk = {"group": [], "time": [], "n": []}
    for lv in levels:
        m = group == lv
        t, e = time[m], event[m]
        kmf = KaplanMeierFitter(alpha=1 - conf_level).fit(t, e)
        ut = np.unique(t)
        tab = kmf.event_table.loc[ut]
        s = kmf.survival_function_.iloc[:, 0].loc[ut].to_numpy(float)
        ci = kmf.confidence_interval_.loc[ut].to_numpy(float)
        lower = np.where(s == 1, 1.0, np.where(s == 0, np.nan, ci[:, 0]))
        upper = np.where(s == 1, 1.0, np.where(s == 0, np.nan, ci[:, 1]))
        curve["group"] += [lv] * (len(ut) + 1)
        curve["time"] += [0.0, *ut]
        curve["n_risk"] += [float(len(t)), *tab["at_risk"].to_numpy(float)]
        curve["n_event"] += [0.0, *tab["observed"].to_numpy(float)]
        curve["n_censor"] += [0.0, *tab["censored"].to_numpy(float)]
        curve["survival"] += [1.0, *s]
        curve["lower"] += [1.0, *lower]
        curve["upper"] += [1.0, *upper]
        risk["group"] += [lv] * len(risk_times)
        risk["time"] += list(risk_times)
        risk["n"] += [float(np.sum(t >= x)) for x in risk_times]
    out = {f"curve_{k}": (v if k == "group" else np.asarray(v, float)) for k, v in curve.items()}
    out.update(
        {f"risk_{k}": (v if k == "group" else np.asarray(v, float)) for k, v in risk.items()}
    )
    return out


def km_logrank(time, event, group, risk_times, conf_level):
    """Medians per group; log-rank chi2 = U' V^- U over the first k-1 groups (Mantel 1966)."""
    levels = sorted(set(group))
    g = np.asarray(group)
    ut = np.unique(time[event == 1])
    k = len(levels)
    obs_minus_exp = np.zeros(k)
    var = np.zeros((k, k))
    for u in ut:
        at = time >= u
        n_t = at.sum()
        d_t = np.sum((time == u) & (event == 1))
        n_g = np.array([np.sum(at & (g == lv)) for lv in levels], dtype=float)
        d_g = np.array(
            [np.sum((time == u) & (event == 1) & (g == lv)) for lv in levels], dtype=float
        )
        obs_minus_exp += d_g - d_t * n_g / n_t
        if n_t > 1:
            f = d_t * (n_t - d_t) / (n_t**2 * (n_t - 1))
            var += f * (np.diag(n_g) * n_t - np.outer(n_g, n_g))
    u_vec, v = obs_minus_exp[:-1], var[:-1, :-1]
    chi2 = float(u_vec @ np.linalg.pinv(v) @ u_vec)
    df = k - 1
    rows = [
        {
            "group": lv,
            "n": float(np.sum(g == lv)),
            "events": float(np.sum(event[g == lv])),
            "median": km_median(time[g == lv], event[g == lv]),
        }
        for lv in levels
    ]
    return {
        "group": [str(lv) for lv in levels],
        "n": np.array([r["n"] for r in rows]),
        "events": np.array([r["events"] for r in rows]),
        "median": np.array([r["median"] for r in rows]),
        "chi2": chi2,
        "df": float(df),
        "p": float(sps.chi2.sf(chi2, df)),
        **km_curves(time, event, g, [str(lv) for lv in levels], risk_times, conf_level),
    }


def _efron_derivatives(beta, time, event, x):
    """Log partial likelihood score and information, one covariate, Efron ties (1977)."""
    score = info = 0.0
    r = np.exp(beta * x)
    for u in np.unique(time[event == 1]):
        at = time >= u
        dead = (time == u) & (event == 1)
        d = dead.sum()
        s0, s1, s2 = r[at].sum(), (r * x)[at].sum(), (r * x * x)[at].sum()
        t0, t1, t2 = r[dead].sum(), (r * x)[dead].sum(), (r * x * x)[dead].sum()
        score += x[dead].sum()
        for k in range(d):
            f = k / d
            a0, a1, a2 = s0 - f * t0, s1 - f * t1, s2 - f * t2
            score -= a1 / a0
            info += a2 / a0 - (a1 / a0) ** 2
    return score, info


def cox(time, event, x, conf_level):
    """Cox model of one covariate by Newton-Raphson on the Efron partial likelihood."""
    beta = 0.0
    for _ in range(100):
        score, info = _efron_derivatives(beta, time, event, x)
        step = score / info
        beta += step
        if abs(step) < 1e-13:
            break
    _, info = _efron_derivatives(beta, time, event, x)
    se = 1 / np.sqrt(info)
    q = sps.norm.ppf(1 - (1 - conf_level) / 2)
    return {
        "coef": beta,
        "se": se,
        "hr": np.exp(beta),
        "ci_low": np.exp(beta - q * se),
        "ci_high": np.exp(beta + q * se),
        "p": 2 * sps.norm.sf(abs(beta / se)),
    }


# ------------------------------------------------------------------------ Table 1 tests


def ks_normal(x):
    """KS against N(mean, sd) of the sample; exact when n < 100 without ties (as R)."""
    x = np.asarray(x, dtype=float)
    exact = len(x) < 100 and len(np.unique(x)) == len(x)
    res = sps.kstest(
        x, "norm", args=(x.mean(), x.std(ddof=1)), method="exact" if exact else "asymp"
    )
    return float(res.pvalue)


def t_test(a, b):
    res = sps.ttest_ind(a, b, equal_var=True)
    return {"statistic": float(res.statistic), "p": float(res.pvalue)}


def wilcox(a, b):
    """Wilcoxon rank-sum (W = U of a); exact when both n < 50 and no ties, else normal with
    continuity and tie correction (R's rule)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ties = len(np.unique(np.concatenate([a, b]))) < len(a) + len(b)
    exact = len(a) < 50 and len(b) < 50 and not ties
    res = sps.mannwhitneyu(
        a,
        b,
        use_continuity=True,
        alternative="two-sided",
        method="exact" if exact else "asymptotic",
    )
    return {"statistic": float(res.statistic), "p": float(res.pvalue)}


def chisq(tab):
    res = sps.chi2_contingency(np.asarray(tab, float), correction=True)
    return {"statistic": float(res.statistic), "p": float(res.pvalue)}


def _fisher_k_by_2(tab: np.ndarray, max_tables: int = 5_000_000) -> float:
    """Exact Fisher test of a k x 2 table: enumerate every table with the observed margins
    (multivariate hypergeometric, P = prod C(r_i, a_i) / C(N, c_1)) and sum those no more
    probable than the observed one, with R's relative tolerance 1e-7."""
    from scipy.special import gammaln

    def lchoose(n, k):
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    rows = tab.sum(axis=1).astype(int)
    col = int(tab[:, 0].sum())
    total = int(rows.sum())
    partial = np.zeros(1, dtype=int)
    logp = np.zeros(1)
    remaining = np.cumsum(rows[::-1])[::-1]  # row totals from row i on
    for i, r in enumerate(rows[:-1]):
        a = np.arange(min(r, col) + 1)
        partial = (partial[:, None] + a[None, :]).ravel()
        logp = (logp[:, None] + lchoose(r, a)[None, :]).ravel()
        keep = (partial <= col) & (col - partial <= remaining[i + 1])
        partial, logp = partial[keep], logp[keep]
        if partial.size > max_tables:
            raise ValueError("table too large for exact enumeration")
    logp = logp + lchoose(rows[-1], col - partial) - lchoose(total, col)
    obs = np.sum(lchoose(rows, tab[:, 0].astype(int))) - lchoose(total, col)
    prob = np.exp(logp)
    return float(min(1.0, prob[prob <= np.exp(obs) * (1 + 1e-7)].sum()))


def fisher(tab):
    """Fisher's exact test: SciPy for 2 x 2, exact enumeration for k x 2 (as R)."""
    tab = np.asarray(tab, dtype=int)
    if tab.shape == (2, 2):
        p = sps.fisher_exact(tab).pvalue
    elif tab.shape[1] == 2:
        p = _fisher_k_by_2(tab)
    elif tab.shape[0] == 2:
        p = _fisher_k_by_2(tab.T)
    else:
        raise ValueError("the Python engine's Fisher test handles k x 2 tables only")
    return {"statistic": np.nan, "p": float(p)}
