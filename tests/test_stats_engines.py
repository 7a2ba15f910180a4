"""The statistics API: R and Python engines agree to 1e-6 on synthetic data for every
function; documented values on pROC's aSAH data; net benefit against the PyPI dcurves
package; degenerate inputs raise DegenerateInput."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mtnet import stats
from mtnet.stats import DegenerateInput

TOL = 1e-6


def synthetic(seed=3, n=160):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    p1 = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.3 * y - 1)))
    p2 = 1 / (1 + np.exp(-(rng.normal(size=n) + 0.5 * y - 1)))
    k = n // 8
    p1[:k] = p1[k : 2 * k]  # tied risks
    p2 = np.round(p2, 2)  # many ties
    time = np.round(rng.exponential(400, n)) + 1
    time[:k] = time[k : 2 * k]  # tied times
    event = (rng.random(n) < 0.6).astype(float)
    group = np.where(p1 > np.median(p1), "high", "low")
    return dict(y=y, p1=p1, p2=p2, time=time, event=event, group=group)


D = synthetic()
DATASETS = {"n160": D, "n20": synthetic(6, 20), "n37": synthetic(10, 37)}


def _cases(d=D):
    y2, q2 = d["y"][: len(d["y"]) * 9 // 16], d["p2"][: len(d["y"]) * 9 // 16]
    return {
        "auc_ci": lambda e: stats.auc_ci(d["y"], d["p1"], engine=e).summary,
        "delong_test": lambda e: stats.delong_test(d["y"], d["p1"], d["p2"], engine=e).summary,
        "delong_test_unpaired": lambda e: stats.delong_test_unpaired(
            d["y"], d["p1"], y2, q2, engine=e
        ).summary,
        "nri_continuous": lambda e: stats.nri(d["y"], d["p2"], d["p1"], engine=e).summary,
        "nri_categorical": lambda e: stats.nri(
            d["y"], d["p2"], d["p1"], cutoffs=[0.157, 0.4], engine=e
        ).summary,
        "idi": lambda e: stats.idi(d["y"], d["p2"], d["p1"], engine=e).summary,
        "calibration": lambda e: stats.calibration(d["y"], d["p1"], engine=e).summary,
        "calibration_curve": lambda e: stats.calibration(d["y"], d["p2"], bins=10, engine=e).curve,
        "net_benefit": lambda e: stats.net_benefit(
            d["y"], d["p1"], np.arange(0.01, 0.61, 0.01), engine=e
        ),
        "youden_threshold": lambda e: stats.youden_threshold(d["y"], d["p2"], engine=e).summary,
        "km_logrank": lambda e: stats.km_logrank(
            d["time"], d["event"], d["group"], engine=e
        ).summary,
        "km_medians": lambda e: stats.km_logrank(
            d["time"], d["event"], d["group"], engine=e
        ).groups,
        "km_three_groups": lambda e: stats.km_logrank(
            d["time"], d["event"], np.resize(["a", "b", "c"], len(d["y"])), engine=e
        ).summary,
        "cox_hr": lambda e: stats.cox_hr(d["time"], d["event"], d["group"], engine=e).summary,
    }


def max_difference(a: pd.DataFrame, b: pd.DataFrame) -> float:
    assert list(a.columns) == list(b.columns) and a.shape == b.shape
    num = [c for c in a.columns if c != "engine" and pd.api.types.is_numeric_dtype(a[c])]
    assert num, "nothing numeric to compare"
    x, y = a[num].to_numpy(float), b[num].to_numpy(float)
    assert (np.isnan(x) == np.isnan(y)).all()
    same = (x == y) | np.isnan(x)  # equal infinities (Youden's -Inf) and NaN (not reached)
    return float(np.max(np.where(same, 0.0, np.abs(x - y)), initial=0.0))


@pytest.mark.r
@pytest.mark.parametrize("data", list(DATASETS))
@pytest.mark.parametrize("name", list(_cases()))
def test_engines_agree(name, data):
    case = _cases(DATASETS[data])[name]
    try:
        r = case("r")
    except DegenerateInput as err:  # small data: then the Python engine refuses it too
        with pytest.raises(DegenerateInput, match=re.escape(str(err)[:20])):
            case("python")
        return
    py = case("python")
    assert max_difference(r, py) < TOL, f"{name}:\n{r}\n{py}"


@pytest.mark.r
def test_km_median_where_survival_is_exactly_one_half():
    # S = 3/4, 1/2, 1/4, 0 at t = 1..4 in group a: R's median is (2 + 3) / 2 = 2.5
    t = np.array([1, 2, 3, 4, 1, 5, 6, 8], float)
    e = np.ones(8)
    g = np.array(["a"] * 4 + ["b"] * 4)
    r = stats.km_logrank(t, e, g, engine="r").groups
    py = stats.km_logrank(t, e, g, engine="python").groups
    assert r["median"].tolist() == py["median"].tolist() == [2.5, 5.5]


def _asah():
    from mtnet.stats import r_engine

    ro = r_engine.session()
    df = ro.r('local({data(aSAH, package = "pROC", envir = environment()); aSAH})')
    y = (np.asarray(ro.r["as.character"](df.rx2("outcome"))) == "Poor").astype(float)
    return y, np.asarray(df.rx2("s100b"), float), np.asarray(df.rx2("ndka"), float)


@pytest.mark.r
@pytest.mark.parametrize("engine", ["r", "python"])
def test_asah_documented_values(engine):
    """pROC's aSAH: outcome vs s100b AUC 0.7314, vs ndka 0.6120, DeLong Z 1.3908, p 0.164295."""
    y, s100b, ndka = _asah()
    assert len(y) == 113 and y.sum() == 41
    assert stats.auc_ci(y, s100b, engine=engine).auc == pytest.approx(0.7314, abs=5e-5)
    assert stats.auc_ci(y, ndka, engine=engine).auc == pytest.approx(0.6120, abs=5e-5)
    t = stats.delong_test(y, s100b, ndka, engine=engine)
    assert t.z == pytest.approx(1.3908, abs=5e-5)
    assert t.p == pytest.approx(0.164295, abs=5e-7)
    # pROC's roc.test conf.int of the paired difference on aSAH
    assert (t.diff_ci_low, t.diff_ci_high) == pytest.approx((-0.04887061, 0.28769174), abs=5e-8)
    ci = stats.auc_ci(y, s100b, engine=engine)
    assert (ci.ci_low, ci.ci_high) == pytest.approx((0.6301, 0.8326), abs=5e-5)


@pytest.mark.parametrize("engine", ["python", pytest.param("r", marks=pytest.mark.r)])
def test_net_benefit_matches_dcurves(engine):
    import dcurves

    d = D
    thresholds = np.round(np.arange(0.01, 0.61, 0.01), 2)
    ours = stats.net_benefit(d["y"], d["p1"], thresholds, engine=engine)
    frame = pd.DataFrame({"y": d["y"].astype(int), "risk": d["p1"]})
    ref = dcurves.dca(data=frame, outcome="y", modelnames=["risk"], thresholds=thresholds)
    for model, column in (("risk", "net_benefit"), ("all", "treat_all"), ("none", "treat_none")):
        nb = ref[ref["model"] == model].sort_values("threshold")["net_benefit"].to_numpy(float)
        assert np.max(np.abs(nb - ours[column].to_numpy())) < 1e-12, model


@pytest.mark.r
def test_baseline_table_engines_agree():
    from stats_synthetic import clinical_table

    a = pd.concat([clinical_table("TA", 120, 1), clinical_table("TB", 90, 2)], ignore_index=True)
    b = clinical_table("TX", 60, 3)
    b["age"] = b["age"] + 6
    for df_a, df_b in ((a, b), (a.iloc[:30], b.iloc[:14])):  # small: Fisher, exact Wilcoxon
        r = stats.baseline_table(df_a, df_b, engine="r")
        py = stats.baseline_table(df_a, df_b, engine="python")
        assert r["test"].fillna("").tolist() == py["test"].fillna("").tolist()
        assert np.nanmax(np.abs(r["p"] - py["p"])) < TOL
        assert {"t-test", "wilcoxon", "chi-squared", "fisher"} & set(r["test"].dropna())


def test_baseline_table_chooses_the_papers_tests():
    from stats_synthetic import clinical_table

    a, b = clinical_table("TA", 200, 1), clinical_table("TX", 80, 3)
    t = stats.baseline_table(a, b, engine="python").set_index("variable")
    heads = t[t["level"] == ""]
    assert heads.loc["age", "test"] == "t-test"  # normal in both groups
    assert heads.loc["max_diameter_mm", "test"] == "wilcoxon"  # log-normal: KS rejects
    assert heads.loc["bclc", "test"] == "wilcoxon"  # ordinal
    assert heads.loc["afp_ng_ml", "test"] == "wilcoxon"  # grouped <25 / 25-400 / >400
    assert heads.loc["sex", "test"] in ("chi-squared", "fisher")
    levels = t.loc["afp_ng_ml"]
    assert levels["level"].tolist() == ["", "<25", "25-400", ">400"]
    one = a.assign(hbv=1)
    row = stats.baseline_table(one, b.assign(hbv=1), ["hbv"], engine="python").iloc[0]
    assert pd.isna(row["test"]) and row["note"].startswith("one level only")


# ------------------------------------------------------------------ degenerate inputs


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: stats.auc_ci([0] * 20, np.linspace(0, 1, 20), engine="python"), "0 event"),
        (lambda: stats.auc_ci([0, 1] * 10, [0.3] * 20, engine="python"), "all risks are equal"),
        (lambda: stats.auc_ci([0, 1] * 10, [0.1] * 19 + [np.nan], engine="python"), "missing"),
        (lambda: stats.auc_ci([0, 1, 2] * 5, np.linspace(0, 1, 15), engine="python"), "0/1"),
        (
            lambda: stats.delong_test(
                [0, 1] * 10, np.linspace(0, 1, 20), [0.2] * 19, engine="python"
            ),
            "19 values",
        ),
        (
            lambda: stats.calibration([0, 1] * 10, np.linspace(0.1, 1.5, 20), engine="python"),
            "probabilities",
        ),
        (
            lambda: stats.nri(
                [0, 1] * 10,
                np.linspace(0, 1, 20),
                np.linspace(0, 1, 20)[::-1],
                cutoffs=[0.5, 0.2],
                engine="python",
            ),
            "increasing",
        ),
        (
            lambda: stats.km_logrank([1, 2, 3], [1, 0, 1], ["a", "a", "a"], engine="python"),
            "two or more",
        ),
        (
            lambda: stats.km_logrank([1, 2, 3, 4], [0, 0, 0, 0], ["a", "b"] * 2, engine="python"),
            "no events",
        ),
        (
            lambda: stats.cox_hr(
                [1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 0, 0], list("aaabbb"), engine="python"
            ),
            "no events",
        ),
        (
            lambda: stats.net_benefit([0, 1] * 5, [0.5] * 10, [0.0, 0.5], engine="python"),
            "strictly inside",
        ),
    ],
)
def test_degenerate_inputs_raise(call, message):
    with pytest.raises(DegenerateInput, match=message):
        call()


Y = np.array([0, 1] * 15, float)
P = np.linspace(0.05, 0.95, 30)
PERFECT = Y * 0.5 + P * 0.1


@pytest.mark.parametrize("engine", ["python", pytest.param("r", marks=pytest.mark.r)])
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: stats.delong_test(Y, P, P**2, engine=e), "identical DeLong placements"),
        (
            lambda e: stats.delong_test_unpaired(Y, PERFECT, Y, PERFECT + 0.01, engine=e),
            "zero DeLong variance",
        ),
        (
            lambda e: stats.nri(Y, P, P + 0.01, cutoffs=[0.99], engine=e),
            "no patient is reclassified",
        ),
        (lambda e: stats.idi(Y, P, P + 0.01, engine=e), "zero variance"),
    ],
)
def test_zero_variance_is_no_test(engine, call, message):
    """pROC answers p = 1 for identical rankings and NaN elsewhere: both engines refuse."""
    with pytest.raises(DegenerateInput, match=message):
        call(engine)


def test_unknown_engine():
    with pytest.raises(ValueError, match="engine must be one of"):
        stats.auc_ci([0, 1] * 5, np.linspace(0, 1, 10), engine="sas")


@pytest.mark.r
def test_an_r_error_becomes_degenerate_input():
    from mtnet.stats import r_engine

    with pytest.raises(DegenerateInput, match="R error in mtnet_cox: .*different lengths"):
        r_engine.call("mtnet_cox", [1.0, 2.0], [1.0], [0.0, 1.0], 0.95)
