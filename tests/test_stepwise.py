"""Backward stepwise logistic regression against direct statsmodels fits on data with a
known structure; factors of several dummies; separation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps

from mtnet.errors import InputError
from mtnet.model.stepwise import STEP_COLUMNS, TABLE_COLUMNS, backward_stepwise, factor_of


def _data(n=800, seed=0):
    """x1, x2 and the 3-level factor g act; x3, x4 are noise."""
    g = np.random.default_rng(seed)
    x1, x2, x3, x4 = g.normal(size=(4, n))
    x2 = 10 + 5 * x2  # another unit: ORs are per unit of the input
    level = g.integers(0, 3, n)
    gb, gc = (level == 1).astype(float), (level == 2).astype(float)
    eta = -1.0 + 0.9 * x1 - 0.16 * (x2 - 10) + 0.7 * gb + 1.2 * gc
    y = (g.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    x = np.column_stack([x1, x2, x3, gb, gc, x4])
    return x, y, ["x1", "x2", "x3", "g[b]", "g[c]", "x4"]


def test_factor_names_group_dummies():
    assert factor_of("bclc[A]") == "bclc" and factor_of("age") == "age"
    assert factor_of("afp[25-400]") == "afp"


def test_noise_is_removed_and_the_final_model_is_the_direct_statsmodels_fit():
    x, y, names = _data()
    res = backward_stepwise(x, y, names, p_remove=0.05)
    assert res.kept_factors == ["x1", "x2", "g"]
    assert res.kept_terms == ["x1", "x2", "g[b]", "g[c]"] and res.kept_columns == [0, 1, 3, 4]
    assert set(res.steps["removed"]) == {"x3", "x4"} and list(res.steps.columns) == STEP_COLUMNS
    assert res.method == "maximum likelihood"

    direct = sm.Logit(y, sm.add_constant(x[:, res.kept_columns])).fit(disp=0)
    ci = np.exp(direct.conf_int())
    table = res.table
    assert list(table.columns) == TABLE_COLUMNS
    assert list(table["term"]) == ["(intercept)", *res.kept_terms]
    assert np.allclose(table["coef"], direct.params, rtol=1e-6, atol=1e-8)
    assert np.allclose(table["OR"], np.exp(direct.params), rtol=1e-6)
    assert np.allclose(table["ci_low"], ci[:, 0], rtol=1e-5)
    assert np.allclose(table["ci_high"], ci[:, 1], rtol=1e-5)
    assert np.allclose(table["p"], direct.pvalues, rtol=1e-4, atol=1e-12)


def test_each_step_removes_the_largest_wald_p_of_the_current_fit():
    x, y, names = _data()
    res = backward_stepwise(x, y, names, p_remove=0.05)
    cols = [0, 1, 2, 3, 4, 5]
    for _, step in res.steps.iterrows():
        fit = sm.Logit(y, sm.add_constant(x[:, cols])).fit(disp=0)
        single = {names[c]: fit.pvalues[i + 1] for i, c in enumerate(cols) if "[" not in names[c]}
        worst = max(single, key=single.get)
        assert step["removed"] == worst and step["test"] == "Wald"
        assert step["p"] == pytest.approx(single[worst], rel=1e-4)
        cols = [c for c in cols if names[c] != worst]


def test_a_factor_of_several_dummies_goes_by_its_likelihood_ratio_test():
    """g's two dummies are each weak, jointly strong: the LR test keeps them together; with
    a null g, both leave in one step, with the LR p statsmodels gives."""
    g = np.random.default_rng(3)
    n = 600
    x1 = g.normal(size=n)
    level = g.integers(0, 3, n)
    gb, gc = (level == 1).astype(float), (level == 2).astype(float)
    y = (g.random(n) < 1 / (1 + np.exp(-(-0.5 + 1.0 * x1)))).astype(float)
    x = np.column_stack([x1, gb, gc])
    res = backward_stepwise(x, y, ["x1", "g[b]", "g[c]"], p_remove=0.2)
    full = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    reduced = sm.Logit(y, sm.add_constant(x[:, :1])).fit(disp=0)
    p_lr = sps.chi2.sf(2 * (full.llf - reduced.llf), 2)
    assert p_lr > 0.2  # the data are built so
    assert res.kept_factors == ["x1"]
    step = res.steps.iloc[0]
    assert step["removed"] == "g" and step["test"] == "LR" and step["n_terms"] == 2
    assert step["p"] == pytest.approx(p_lr, rel=1e-6)
    # the same terms under other names, one factor per column: each goes by its Wald p
    apart = backward_stepwise(x, y, ["x1", "gb", "gc"], p_remove=0.2)
    assert set(apart.steps["test"]) == {"Wald"}


def test_the_lr_test_for_every_factor_when_asked():
    x, y, names = _data()
    res = backward_stepwise(x, y, names, p_remove=0.05, test="lr")
    assert set(res.steps["test"]) == {"LR"} and res.kept_factors == ["x1", "x2", "g"]


def test_separation_falls_back_to_a_penalised_fit_without_crashing():
    g = np.random.default_rng(5)
    n = 60
    y = np.zeros(n)
    y[:6] = 1
    perfect = y.copy()  # separates the outcome exactly
    x = np.column_stack([perfect, g.normal(size=n), g.normal(size=n)])
    res = backward_stepwise(x, y, ["marker", "a", "b"], p_remove=0.05, seed=1)
    assert "marker" in res.kept_factors
    assert res.method == "L2-penalised"
    assert res.table[["ci_low", "ci_high", "p"]].isna().all().all()
    assert res.table["note"].str.contains("penalised fit").all()
    assert np.isfinite(res.table["coef"]).all()
    assert (res.steps["method"] == "L2-penalised").all()
    assert res.steps["test"].isin(["penalised LR"]).all()


def test_constant_columns_are_dropped_and_inputs_checked():
    x, y, names = _data(300)
    x = np.column_stack([x, np.ones(len(y))])
    res = backward_stepwise(x, y, names + ["const"], p_remove=0.05)
    assert res.dropped == [{"term": "const", "reason": "no variation"}]
    assert "const" not in res.kept_terms
    with pytest.raises(InputError, match="both classes"):
        backward_stepwise(x, np.zeros(len(y)), names + ["const"])
    bad = x.copy()
    bad[0, 2] = np.nan
    with pytest.raises(InputError, match="column x3"):
        backward_stepwise(bad, y, names + ["const"])
    with pytest.raises(InputError, match="disagree"):
        backward_stepwise(x, y, names)


def test_everything_can_go():
    g = np.random.default_rng(9)
    x = g.normal(size=(200, 2))
    y = (g.random(200) < 0.3).astype(float)
    res = backward_stepwise(x, y, ["a", "b"], p_remove=0.001)
    assert res.kept_factors == [] and res.kept_columns == []
    assert list(res.table["term"]) == ["(intercept)"]
    assert res.table["OR"].iloc[0] == pytest.approx(y.mean() / (1 - y.mean()), rel=1e-6)
    assert isinstance(res.steps, pd.DataFrame) and len(res.steps) == 2
