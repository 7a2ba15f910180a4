"""Curve data of the statistics API (what the report's figures draw): ROC points and the
bootstrap band of auc_ci, the binned calibration curve with Wilson intervals and the lowess
smooth, the Kaplan-Meier step functions and numbers at risk of km_logrank. Both engines
agree to 1e-6; the band equals pROC::ci.se given pROC's own resamples; the curves agree
with what the summary numbers say (AUC = area under the ROC points, KM medians)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtnet import stats
from mtnet.stats import DegenerateInput

TOL = 1e-6


def synthetic(seed=3, n=160):
    """Risks with ties, survival times with ties (as tests/test_stats_engines.py)."""
    gen = np.random.default_rng(seed)
    y = (gen.random(n) < 0.3).astype(float)
    p1 = 1 / (1 + np.exp(-(gen.normal(size=n) + 1.3 * y - 1)))
    p2 = np.round(1 / (1 + np.exp(-(gen.normal(size=n) + 0.5 * y - 1))), 2)
    k = n // 8
    p1[:k] = p1[k : 2 * k]
    time = np.round(gen.exponential(400, n)) + 1
    time[:k] = time[k : 2 * k]
    event = (gen.random(n) < 0.6).astype(float)
    group = np.where(p1 > np.median(p1), "high", "low")
    return dict(y=y, p1=p1, p2=p2, time=time, event=event, group=group)


DATASETS = {"n160": synthetic(), "n20": synthetic(6, 20), "n37": synthetic(10, 37)}


def curve_cases(d):
    return {
        "roc_points": lambda e: stats.auc_ci(d["y"], d["p1"], engine=e).roc,
        "roc_points_ties": lambda e: stats.auc_ci(d["y"], d["p2"], engine=e).roc,
        "roc_band": lambda e: stats.auc_ci(
            d["y"], d["p2"], engine=e, band_seed=11, boot_n=200
        ).band,
        "calibration_bins": lambda e: stats.calibration(d["y"], d["p2"], engine=e).curve,
        "calibration_smooth": lambda e: stats.calibration(d["y"], d["p1"], engine=e).smooth,
        "km_curves": lambda e: stats.km_logrank(d["time"], d["event"], d["group"], engine=e).curves,
        "km_at_risk": lambda e: stats.km_logrank(
            d["time"], d["event"], d["group"], risk_times=[0, 100, 250.5, 5000], engine=e
        ).at_risk,
        "km_three_groups": lambda e: stats.km_logrank(
            d["time"], d["event"], np.resize(["a", "b", "c"], len(d["y"])), engine=e
        ).curves,
    }


def max_difference(a: pd.DataFrame, b: pd.DataFrame) -> float:
    assert list(a.columns) == list(b.columns) and a.shape == b.shape and len(a) > 0
    text = [c for c in a.columns if not pd.api.types.is_numeric_dtype(a[c])]
    for c in text:
        assert a[c].tolist() == b[c].tolist(), c
    num = [c for c in a.columns if c not in text]
    x, y = a[num].to_numpy(float), b[num].to_numpy(float)
    assert (np.isnan(x) == np.isnan(y)).all()
    same = (x == y) | np.isnan(x)  # equal infinities (ROC thresholds) and NaN (S = 0)
    with np.errstate(invalid="ignore"):
        return float(np.max(np.where(same, 0.0, np.abs(x - y)), initial=0.0))


@pytest.mark.r
@pytest.mark.parametrize("data", list(DATASETS))
@pytest.mark.parametrize("name", list(curve_cases(DATASETS["n160"])))
def test_engines_agree_on_curves(name, data):
    case = curve_cases(DATASETS[data])[name]
    try:
        r = case("r")
    except DegenerateInput as err:
        with pytest.raises(DegenerateInput, match=str(err)[:20]):
            case("python")
        return
    py = case("python")
    assert max_difference(r, py) < TOL, f"{name}:\n{r}\n{py}"


@pytest.mark.r
def test_band_equals_proc_ci_se_on_procs_own_resamples():
    """pROC::ci.se after set.seed(s) against our band given the resamples pROC draws after
    the same set.seed(s) (stratified.ci.se: controls first, then cases, per replicate)."""
    from mtnet.stats import py_engine, r_engine

    d = DATASETS["n160"]
    y, p = d["y"], d["p2"]  # many ties: exercises the interpolation and exact matches
    boot_n, sp = 150, np.linspace(0, 1, 26)
    ro = r_engine.session()
    ro.globalenv["y"], ro.globalenv["p"] = ro.FloatVector(y), ro.FloatVector(p)
    ro.globalenv["sp"] = ro.FloatVector(sp)
    draws = ro.r(f"""local({{
        set.seed(20240607)
        nk <- sum(y == 1); nc <- sum(y == 0)
        idx <- lapply(1:{boot_n}, function(b) list(c = sample.int(nc, nc, replace = TRUE),
                                                    k = sample.int(nk, nk, replace = TRUE)))
        list(cases = unlist(lapply(idx, `[[`, "k")), controls = unlist(lapply(idx, `[[`, "c")))
        }})""")
    idx_cases = np.asarray(draws.rx2("cases"), int).reshape(boot_n, -1) - 1
    idx_controls = np.asarray(draws.rx2("controls"), int).reshape(boot_n, -1) - 1
    ci = np.asarray(ro.r(f"""local({{
            r <- mtnet_roc(y, p)
            set.seed(20240607)
            unclass(pROC::ci.se(r, specificities = sp, boot.n = {boot_n}, progress = "none"))
            }})"""))
    ours = py_engine.roc_band(y, p, idx_cases, idx_controls, sp, 0.95)
    assert np.max(np.abs(ci[:, 0] - ours["tpr_low"])) < 1e-12
    assert np.max(np.abs(ci[:, 1] - ours["tpr_median"])) < 1e-12
    assert np.max(np.abs(ci[:, 2] - ours["tpr_high"])) < 1e-12


def test_roc_points_enclose_the_auc():
    """The trapezoidal area under the ROC points is the Mann-Whitney AUC (ties: diagonal
    steps); the curve runs from (1, 1) at -inf to (0, 0) at +inf."""
    d = DATASETS["n160"]
    for p in (d["p1"], d["p2"]):
        a = stats.auc_ci(d["y"], p, engine="python")
        roc = a.roc
        assert roc["threshold"].is_monotonic_increasing
        assert (roc.iloc[0][["fpr", "tpr"]] == 1).all() and (
            roc.iloc[-1][["fpr", "tpr"]] == 0
        ).all()
        fpr, tpr = roc["fpr"].to_numpy()[::-1], roc["tpr"].to_numpy()[::-1]
        assert np.trapezoid(tpr, fpr) == pytest.approx(a.auc, abs=1e-12)
        assert len(roc) == len(np.unique(p)) + 1
    assert a.band.empty and list(a.band.columns)[:2] == ["specificity", "fpr"]


def test_band_is_seeded_and_ordered():
    d = DATASETS["n160"]

    def band(seed):
        return stats.auc_ci(d["y"], d["p1"], band_seed=seed, boot_n=300, engine="python").band

    a, b, c = band(5), band(5), band(6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert (a["tpr_low"] <= a["tpr_median"]).all() and (a["tpr_median"] <= a["tpr_high"]).all()
    assert np.allclose(a["fpr"], 1 - a["specificity"])
    # the empirical curve lies inside its own 95% band at nearly every specificity
    roc = stats.auc_ci(d["y"], d["p1"], engine="python").roc
    tpr_at = np.interp(a["fpr"], roc["fpr"][::-1], roc["tpr"][::-1])
    inside = (tpr_at >= a["tpr_low"] - 1e-12) & (tpr_at <= a["tpr_high"] + 1e-12)
    assert inside.mean() > 0.9


def test_calibration_bins_and_smooth():
    d = DATASETS["n160"]
    c = stats.calibration(d["y"], d["p2"], engine="python")
    cur = c.curve
    assert list(cur.columns) == [
        "bin",
        "n",
        "mean_predicted",
        "observed",
        "n_events",
        "observed_low",
        "observed_high",
    ]
    assert cur["n"].sum() == len(d["y"]) and cur["n_events"].sum() == d["y"].sum()
    assert np.allclose(cur["observed"], cur["n_events"] / cur["n"])
    assert (
        (cur["observed_low"] <= cur["observed"]) & (cur["observed"] <= cur["observed_high"])
    ).all()
    # Wilson score bounds solve |x/n - p| = z sqrt(p (1 - p) / n)
    z = 1.959963984540054
    for _, b in cur.iterrows():
        for bound in (b["observed_low"], b["observed_high"]):
            lhs = abs(b["observed"] - bound)
            assert lhs == pytest.approx(z * np.sqrt(bound * (1 - bound) / b["n"]), abs=1e-9)
    sm = c.smooth
    assert len(sm) == len(d["y"]) and sm["predicted"].is_monotonic_increasing
    assert np.allclose(np.sort(d["p2"]), sm["predicted"])


def test_km_curves_match_the_medians_and_counts():
    d = DATASETS["n160"]
    km = stats.km_logrank(d["time"], d["event"], d["group"], engine="python")
    for _, g in km.groups.iterrows():
        cur = km.curves[km.curves["group"] == g["group"]]
        assert cur.iloc[0][["time", "survival"]].tolist() == [0.0, 1.0]
        assert cur.iloc[0]["n_risk"] == g["n"]
        assert cur["n_event"].sum() == g["events"]
        assert cur["n_event"].sum() + cur["n_censor"].sum() == g["n"]
        assert cur["survival"].is_monotonic_decreasing
        # S(t) = prod (1 - d / n) over the rows
        s = np.cumprod(1 - cur["n_event"] / cur["n_risk"])
        assert np.allclose(s, cur["survival"])
        if np.isfinite(g["median"]):
            assert cur.loc[cur["time"] < g["median"], "survival"].min() > 0.5 - 1e-12
        lo, hi = cur["lower"], cur["upper"]
        ok = cur["survival"] > 0
        assert (
            (lo[ok] <= cur["survival"][ok] + 1e-12) & (cur["survival"][ok] <= hi[ok] + 1e-12)
        ).all()
    at = km.at_risk
    assert at["time"].tolist()[:3] == [0.0, 365.0, 730.0]
    assert at["time"].max() <= d["time"].max()
    for _, row in at.iterrows():
        m = d["group"] == row["group"]
        assert row["n_risk"] == np.sum(d["time"][m] >= row["time"])


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: stats.auc_ci(
                [0, 1] * 10, np.linspace(0, 1, 20), band_seed=1, boot_n=1, engine="python"
            ),
            "boot_n",
        ),
        (
            lambda: stats.auc_ci(
                [0, 1] * 10,
                np.linspace(0, 1, 20),
                band_seed=1,
                specificities=[1.2],
                engine="python",
            ),
            "specificities",
        ),
        (
            lambda: stats.km_logrank(
                [1, 2, 3, 4], [1, 0, 1, 1], list("aabb"), risk_times=[-1], engine="python"
            ),
            "risk_times",
        ),
    ],
)
def test_bad_curve_arguments_raise(call, message):
    with pytest.raises(DegenerateInput, match=message):
        call()
