"""Model-Radiomics and Model-Radiomics-CR (mtnet.model.radiomics_lr) on data with a known
signal: selection, filters, harmonisation, out-of-fold without leakage, seeds, saving."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mtnet.errors import InputError
from mtnet.config import section
from mtnet.model import radiomics_lr as rl

INFORMATIVE = {"f00": 1.2, "f01": -1.0, "f02": 0.9}


def cohort(seed=0, n=240, p=30, offsets=(0.0, 3.0, -2.0), intercept=-1.2):
    """Wide features of three centers (each with its own offset on every feature, as a
    scanner's would be) and an outcome that depends on f00, f01, f02 before the offset."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    x[:, 10] = x[:, 0] + 0.05 * rng.normal(size=n)  # a near copy of f00 (|r| ~ 0.999)
    eta = intercept + sum(b * x[:, int(f[1:])] for f, b in INFORMATIVE.items())
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    center = np.array(["A", "B", "C"])[np.arange(n) % 3]
    for c, off in zip("ABC", offsets):
        x[center == c] += off
    df = pd.DataFrame(x, columns=[f"f{j:02d}" for j in range(p)])
    df.insert(0, "center", center)
    df.insert(0, "patient_id", [f"{c}-{i:04d}" for i, c in enumerate(center)])
    return df, y


def selected(model):
    return {t["term"]: t["coef_per_sd"] for t in model["terms"] if t["coef_per_sd"] != 0}


def folds_of(df, k=5):
    return pd.DataFrame({"center": df["center"], "patient_id": df["patient_id"],
                         "fold": np.arange(len(df)) % k})


# ------------------------------------------------------------------ filters


def test_correlation_filter_is_deterministic_and_independent_of_column_order():
    rng = np.random.default_rng(1)
    n = 80
    a, b, c = rng.normal(size=(3, n))
    x = np.column_stack([a, a + 0.1 * rng.normal(size=n), b, b + 0.2 * rng.normal(size=n),
                         c, a + b, rng.normal(size=n)])
    names = ["a1", "a2", "b1", "b2", "c", "ab", "noise"]
    kept, dropped = rl.correlation_filter(x, names, 0.9, "spearman")
    # one of each pair: the pair's member with the lower mean |r| with everything else
    assert len(kept) == 5 and "c" in kept and "noise" in kept and "ab" in kept
    assert len({"a1", "a2"} & set(kept)) == 1 and len({"b1", "b2"} & set(kept)) == 1
    for d in dropped:
        assert d["step"] == "correlation" and d["reason"].split(" with ")[1] in kept
    for perm_seed in range(5):
        perm = np.random.default_rng(perm_seed).permutation(len(names))
        k2, d2 = rl.correlation_filter(x[:, perm], [names[i] for i in perm], 0.9, "spearman")
        assert set(k2) == set(kept) and {d["feature"] for d in d2} == {d["feature"] for d in dropped}
    # the threshold is strict: a pair correlated at 0.85 both stay
    y = a + 0.6 * rng.normal(size=n)
    r = abs(np.corrcoef(a, y)[0, 1])
    assert set(rl.correlation_filter(np.column_stack([a, y]), ["a", "y"], r + 0.01, "pearson")[0]) == {"a", "y"}
    assert len(rl.correlation_filter(np.column_stack([a, y]), ["a", "y"], r - 0.01, "pearson")[0]) == 1


def test_variance_and_missing_filters():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 4))
    x[:, 1] = 3.0
    x[:46, 2] = 0.0  # one value in 92% of the rows
    kept, dropped = rl.variance_filter(x, ["ok", "const", "mode", "ok2"], 0.9)
    assert kept == ["ok", "ok2"]
    assert [d["feature"] for d in dropped] == ["const", "mode"]
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [np.nan, np.nan, 1.0, 2.0]})
    kept, dropped = rl.missing_filter(df, 0.25)
    assert kept == ["a"] and dropped[0]["feature"] == "b" and "50%" in dropped[0]["reason"]


# ------------------------------------------------------------------ fitting


def test_l1_selects_the_informative_features_through_center_offsets():
    df, y = cohort(seed=3)
    model = rl.fit(df, y, seed=11)
    assert model["model"] == rl.MODEL_RADIOMICS
    # f00 and its near copy f10: the correlation filter keeps one, named in the other's reason
    dropped = {d["feature"]: d for d in model["dropped"]}
    twin = {"f00", "f10"} - set(dropped)
    assert len(twin) == 1
    (kept_twin,) = twin
    gone = ({"f00", "f10"} - twin).pop()
    assert dropped[gone]["step"] == "correlation" and kept_twin in dropped[gone]["reason"]
    signal = {kept_twin: INFORMATIVE["f00"], "f01": INFORMATIVE["f01"], "f02": INFORMATIVE["f02"]}
    sel = selected(model)
    assert set(signal) <= set(sel)
    top = sorted(sel, key=lambda f: -abs(sel[f]))[:3]
    assert set(top) == set(signal)
    for f, b in signal.items():
        assert np.sign(sel[f]) == np.sign(b)
    # the penalty was chosen by the inner cross-validation over the data-driven grid
    assert len(model["C_path"]) == section("features")["model"]["n_C"] and model["C"] in [r["C"] for r in model["C_path"]]
    assert roc_auc_score(y, rl.predict(model, df)) > 0.8


def test_an_external_center_is_harmonised_from_its_own_rows():
    df, y = cohort(seed=4)
    model = rl.fit(df, y, seed=1)
    ext, y_ext = cohort(seed=5, n=90, offsets=(0.0, 0.0, 0.0))
    ext["center"] = "EXT"
    moved = ext.copy()
    cols = rl.feature_columns(ext)
    moved[cols] = moved[cols] + 4.0  # its scanner adds an offset the training never saw
    r_plain, r_moved = rl.predict(model, ext), rl.predict(model, moved)
    # equal up to the empirical-Bayes shrinkage, which sees the offset per feature's SD
    shift = np.abs(r_moved - r_plain)
    assert shift.max() < 0.03
    assert roc_auc_score(y_ext, r_moved) > 0.75
    raw = rl.fit(df, y, settings={"harmonize": "none"}, seed=1)
    assert np.abs(rl.predict(raw, moved) - rl.predict(raw, ext)).mean() > 3 * shift.mean()
    with pytest.raises(InputError, match="center EXT.*one patient"):
        rl.predict(model, moved.iloc[:1])


def test_model_radiomics_cr_adds_the_clinical_matrix():
    df, y = cohort(seed=6)
    rng = np.random.default_rng(6)
    clinical = np.column_stack([y + rng.normal(0, 0.7, len(y)), rng.normal(size=len(y)),
                                np.ones(len(y))])
    names = ["afp_group[>400]", "age", "constant"]
    model = rl.fit(df, y, clinical, names, seed=2)
    assert model["model"] == rl.MODEL_RADIOMICS_CR
    kinds = {t["term"]: t["kind"] for t in model["terms"]}
    assert kinds["afp_group[>400]"] == "clinical" and "constant" not in kinds
    assert selected(model)["afp_group[>400]"] > 0
    risk = rl.predict(model, df, clinical)
    assert roc_auc_score(y, risk) > roc_auc_score(y, rl.predict(rl.fit(df, y, seed=2), df))
    # columns are matched by name when the caller gives them in another order
    np.testing.assert_allclose(rl.predict(model, df, clinical[:, ::-1], names[::-1]), risk)
    with pytest.raises(InputError, match="needs the clinical matrix"):
        rl.predict(model, df)
    bad = clinical.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="column age.*missing values"):
        rl.fit(df, y, bad, names)


def test_same_seed_same_model_and_saved_files_round_trip(tmp_path):
    df, y = cohort(seed=7, n=150)
    a = rl.fit(df, y, seed=5)
    b = rl.fit(df, y, seed=5)
    assert json.dumps(a) == json.dumps(b)
    paths = rl.save(a, tmp_path / "model")
    loaded = rl.load(tmp_path / "model")
    np.testing.assert_array_equal(rl.predict(loaded, df), rl.predict(a, df))
    coef = pd.read_csv(paths["coefficients"], sep="\t")
    assert coef.iloc[0]["term"] == "(intercept)"
    assert set(coef.loc[coef["selected"] == 1, "term"]) - {"(intercept)"} == set(selected(a))
    fate = pd.read_csv(paths["features"], sep="\t", keep_default_na=False)
    assert len(fate) == len(rl.feature_columns(df))
    fate = fate.set_index("feature")
    assert {fate.loc["f00", "step"], fate.loc["f10", "step"]} == {"", "correlation"}
    folds = folds_of(df)
    o1 = rl.fit_predict_oof(df, None, y, folds, seed=5)
    o2 = rl.fit_predict_oof(df, None, y, folds, seed=5)
    pd.testing.assert_frame_equal(o1, o2)


# ------------------------------------------------------------------ out of fold


def test_out_of_fold_predictions_do_not_see_the_held_out_labels():
    df, y = cohort(seed=8, n=150)
    folds = folds_of(df)
    oof = rl.fit_predict_oof(df, None, y, folds, seed=3)
    assert list(oof.columns) == ["patient_id", "center", "fold", "risk"]
    assert list(oof["patient_id"]) == list(df["patient_id"]) and oof["risk"].notna().all()
    # flipping the labels of fold 0 changes nothing in fold 0's predictions ...
    flipped = y.copy()
    flipped[folds["fold"] == 0] = 1 - flipped[folds["fold"] == 0]
    again = rl.fit_predict_oof(df, None, flipped, folds, seed=3)
    held = (folds["fold"] == 0).to_numpy()
    np.testing.assert_array_equal(again["risk"][held], oof["risk"][held])
    # ... but does change the other folds' (fold 0 is their training data)
    assert not np.allclose(again["risk"][~held], oof["risk"][~held])


def test_a_leaky_fit_would_memorise_what_out_of_fold_cannot():
    """One indicator feature per patient and a random outcome: a fit that saw the held-out
    rows predicts them perfectly (apparent AUC ~ 1); out-of-fold it is chance."""
    rng = np.random.default_rng(9)
    n = 60
    y = np.r_[np.ones(20, int), np.zeros(40, int)]
    rng.shuffle(y)
    x = np.eye(n) + 0.01 * rng.normal(size=(n, n))
    df = pd.DataFrame(x, columns=[f"id{i:02d}" for i in range(n)])
    df.insert(0, "center", "A")
    df.insert(0, "patient_id", [f"A-{i:04d}" for i in range(n)])
    settings = {"harmonize": "none", "C_grid": [10.0], "max_mode_fraction": 1.0,
                "correlation_threshold": 1.0}
    leaky = rl.predict(rl.fit(df, y, settings=settings), df)
    assert roc_auc_score(y, leaky) > 0.95
    oof = rl.fit_predict_oof(df, None, y, folds_of(df), settings=settings)
    assert abs(roc_auc_score(y, oof["risk"]) - 0.5) < 0.2


def test_clinical_encoding_can_be_fitted_inside_each_fold():
    df, y = cohort(seed=10, n=120)
    age = np.random.default_rng(10).normal(60, 10, len(y)) + 8 * y
    calls = []

    def encode(train, test):
        calls.append((len(train), len(test)))
        mean = age[train].mean()  # fitted on the training part only
        return (age[train] - mean)[:, None], (age[test] - mean)[:, None]

    oof = rl.fit_predict_oof(df, encode, y, folds_of(df, 4), clinical_names=["age"], seed=1)
    assert calls == [(90, 30)] * 4 and oof["risk"].notna().all()


def test_bad_inputs_are_one_line_errors():
    df, y = cohort(seed=11, n=60)
    with pytest.raises(InputError, match="mvi must be 0/1"):
        rl.fit(df, np.r_[y[:-1], 2])
    with pytest.raises(InputError, match="too few"):
        rl.fit(df, np.r_[1, np.zeros(len(y) - 1, int)])
    with pytest.raises(InputError, match="features.harmonize: 'z-score' is not one of none, combat"):
        rl.fit(df, y, settings={"harmonize": "z-score"})
    with pytest.raises(InputError, match="features.model.*unknown key 'lambda'"):
        rl.fit(df, y, settings={"lambda": 1})
    model = rl.fit(df, y, settings={"C_grid": [1.0]})
    with pytest.raises(InputError, match="feature.*absent"):
        rl.predict(model, df.drop(columns=[model["harmonized_features"][0]]))
    folds = folds_of(df).iloc[1:]
    with pytest.raises(InputError, match="patient A-0000.*no fold"):
        rl.fit_predict_oof(df, None, y, folds)
