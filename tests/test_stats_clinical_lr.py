"""Model-Clinical-LR, the penalised reference: the penalty chosen by seeded inner
cross-validation, bootstrap CIs, out-of-fold risks from the split file, predictions."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mtnet.errors import InputError
from mtnet.factors import Encoding
from mtnet.model import clinical_lr
from mtnet.model.splits import make_folds
from mtnet.stats.api import auc_ci
from mtnet.tables import PREDICTION_COLUMNS, read_clinical, read_tsv
from stats_synthetic import clinical_table, write_table


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("lr")
    tables = [
        write_table(clinical_table("TA", 300, 1), d / "TA.tsv"),
        write_table(clinical_table("TB", 260, 2), d / "TB.tsv"),
    ]
    model = clinical_lr.fit(tables, seed=5, bootstrap=200)
    clinical_lr.save(model, d / "model", d / "summary.tsv", d / "log.tsv")
    return d, tables, model


def test_penalised_fit_is_the_penalised_optimum_at_the_cross_validated_lambda(fitted):
    d, tables, model = fitted
    lam = model["fit"]["l2_penalty"]
    cv = model["fit"]["penalty_cv"]
    assert len(cv) == 21 and lam == max(cv, key=lambda r: (round(r["cv_loglik"], 9), r["penalty"]))["penalty"]
    log = read_tsv(d / "log.tsv")
    assert np.allclose(log["penalty"], [r["penalty"] for r in cv], rtol=1e-12)
    train = pd.concat([read_clinical(t) for t in tables], ignore_index=True)
    enc = Encoding.from_dict(model["encoding"])
    xs = enc.standardized(train)
    y = train["mvi"].to_numpy(float)
    # per-unit coefficients are the standardised solution of an independent fit, rescaled
    ref = LogisticRegression(C=1 / lam, solver="lbfgs", tol=1e-12, max_iter=5000).fit(xs, y)
    beta = np.array([c["coef"] for c in model["coefficients"]])
    sd = np.asarray(enc.sd)
    assert np.allclose(beta[1:] * sd, ref.coef_.ravel(), atol=1e-5)
    # the penalised score equations hold at the stored solution
    mu = clinical_lr.predict_risk(model, train)
    grad = np.column_stack([np.ones(len(xs)), xs]).T @ (y - mu)
    grad[1:] -= lam * beta[1:] * sd
    assert np.max(np.abs(grad)) < 1e-6


def test_summary_has_bootstrap_cis_and_the_true_factors_come_out(fitted):
    d, _, model = fitted
    coef = read_tsv(d / "summary.tsv").set_index("term")
    assert list(coef.reset_index().columns) == clinical_lr.COEFFICIENT_COLUMNS
    assert (coef["ci_low"] <= coef["OR"]).all() and (coef["OR"] <= coef["ci_high"]).all()
    assert coef["p"].isna().all() and coef["note"].str.contains("bootstrap percentile").all()
    assert np.allclose(coef["OR"], np.exp(coef["coef"]))
    # the generator's factors: OR > 1 with the whole CI above 1
    for term in ("bclc[B]", "invasive_shape[1]", "corona_low_attenuation[1]"):
        assert coef.loc[term, "OR"] > 1.5 and coef.loc[term, "ci_low"] > 1.0, term
    assert {"sex[F]", "treatment[TACE]", "bclc[A]", "lesion_number[>3]", "afp_ng_ml[>400]", "age"} <= set(coef.index)
    stored = json.loads((d / "model" / "model.json").read_text())
    assert [c["term"] for c in stored["coefficients"]] == coef.index.tolist()


def test_fit_is_seeded_and_deterministic(tmp_path):
    a, b = clinical_table("TA", 40, 11), clinical_table("TB", 44, 12)
    tables = [write_table(a, tmp_path / "TA.tsv"), write_table(b, tmp_path / "TB.tsv")]
    one = clinical_lr.fit(tables, seed=3, bootstrap=50)
    two = clinical_lr.fit(tables, seed=3, bootstrap=50)
    assert one["coefficients"] == two["coefficients"] and one["fit"] == two["fit"]


def test_out_of_fold_risks_refit_everything_on_the_other_folds(fitted):
    _, tables, model = fitted
    train = pd.concat([read_clinical(t) for t in tables], ignore_index=True)
    folds = make_folds(train, 5, seed=9)
    oof = clinical_lr.oof_risks(train, folds, seed=5)
    assert len(oof) == len(train) and oof["risk"].between(0, 1).all()
    # fold 2 by hand: the procedure on the other folds, applied to fold 2
    fold = oof.set_index(["center", "patient_id"])["fold"]
    held = train[[fold[(c, p)] == 2 for c, p in zip(train["center"], train["patient_id"])]]
    rest = train.drop(index=held.index)
    from mtnet.seeds import derive_seed

    by_hand = clinical_lr.predict_risk(clinical_lr.fit_frame(rest, derive_seed(5, "Model-Clinical-LR", "fold", 2)), held)
    got = oof.set_index("patient_id").loc[held["patient_id"], "risk"].to_numpy()
    assert np.allclose(got, by_hand)
    # honest: out-of-fold discrimination is below the apparent one
    y = train["mvi"].to_numpy()
    apparent = auc_ci(y, clinical_lr.predict_risk(model, train), engine="python").auc
    assert auc_ci(y, oof["risk"].to_numpy(), engine="python").auc < apparent


def test_predictions_contract_apparent_and_oof(fitted, tmp_path):
    d, tables, model = fitted
    ext = clinical_table("TX", 90, 3)
    out = clinical_lr.predict_table(d / "model" / "model.json", write_table(ext, tmp_path / "TX.tsv"),
                                    center="TX", role="external", out_path=tmp_path / "p.tsv")
    back = read_tsv(tmp_path / "p.tsv")
    assert list(back.columns) == PREDICTION_COLUMNS
    assert (back["split"] == "external").all() and (back["model"] == "Model-Clinical-LR").all()
    assert back["patient_id"].tolist() == ext["patient_id"].tolist()
    assert back["risk"].between(0, 1).all() and back["mvi"].tolist() == ext["mvi"].tolist()
    train = pd.concat([read_clinical(t) for t in tables], ignore_index=True)
    oof = clinical_lr.oof_risks(train, make_folds(train, 5, seed=9), seed=5)
    oof_path = tmp_path / "oof.tsv"
    oof.to_csv(oof_path, sep="\t", index=False)
    ta = clinical_lr.predict_table(d / "model" / "model.json", tables[0], "TA", "train",
                                   tmp_path / "a.tsv", oof_path=oof_path)
    assert ta["split"].value_counts().to_dict() == {"apparent": 300, "oof": 300}
    assert np.allclose(ta.loc[ta["split"] == "oof", "risk"],
                       oof[oof["center"] == "TA"]["risk"].to_numpy())
    with pytest.raises(InputError, match="without an out-of-fold risk"):
        clinical_lr.predict_table(d / "model" / "model.json", tables[0], "TA", "train",
                                  tmp_path / "b.tsv", oof_path=write_table(oof.iloc[1:], tmp_path / "short.tsv"))


def test_dropped_and_imputed_factors(tmp_path, caplog):
    a, b = clinical_table("TA", 30, 11), clinical_table("TB", 32, 12)
    for t in (a, b):
        t["enhancement_ratio"] = np.nan  # entirely missing: dropped with a reason
        t["hbv"] = 1  # no variation: dropped
    a.loc[a.index[:3], "age"] = np.nan  # partly missing: imputed
    tables = [write_table(a, tmp_path / "TA.tsv"), write_table(b, tmp_path / "TB.tsv")]
    with caplog.at_level(logging.INFO):
        model = clinical_lr.fit(tables, seed=1)
    dropped = {d["column"]: d["reason"] for d in model["encoding"]["dropped"]}
    assert "entirely NA" in dropped["enhancement_ratio"] and "no variation" in dropped["hbv"]
    assert "3 missing value(s) imputed" in caplog.text
    ext = clinical_table("TX", 15, 13).drop(columns=["age"])
    out = clinical_lr.predict_risk(model, ext)
    assert np.isfinite(out).all()


def test_bad_inputs(tmp_path, fitted):
    d, _, _ = fitted
    one = clinical_table("TA", 30, 5).assign(mvi=0)
    with pytest.raises(InputError, match="one class only"):
        clinical_lr.fit([write_table(one, tmp_path / "one.tsv")])
    empty = clinical_table("TA", 30, 5)[["patient_id", "mvi", "center"]].assign(age=np.nan)
    with pytest.raises(InputError, match="no clinical factor is usable"):
        clinical_lr.fit([write_table(empty, tmp_path / "empty.tsv")])
    bad = clinical_table("TX", 12, 6)
    bad.loc[bad.index[4], "bclc"] = "X"
    with pytest.raises(InputError, match=r"center TX, patient TX-0005, column bclc.*unknown code 'X'"):
        clinical_lr.predict_table(d / "model" / "model.json", write_table(bad, tmp_path / "bad.tsv"),
                                  "TX", "external", tmp_path / "p.tsv")
    with pytest.raises(InputError, match="unknown role"):
        clinical_lr.predict_table(d / "model" / "model.json", tmp_path / "bad.tsv", "TX", "test",
                                  tmp_path / "p.tsv")


def test_a_new_patients_risk_gets_the_bootstrap_percentile_interval(fitted, tmp_path):
    d, tables, model = fitted
    draws = np.asarray(model["bootstrap_coefficients"])
    assert draws.shape == (200, 1 + len(model["coefficients"]) - 1)
    # the odds ratios' CIs are the same resamples' percentiles
    lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
    assert np.allclose(np.exp(lo), [c["ci_low"] for c in model["coefficients"]], rtol=1e-12)
    assert np.allclose(np.exp(hi), [c["ci_high"] for c in model["coefficients"]], rtol=1e-12)
    new = clinical_table("TX", 40, 21)
    path = write_table(new, tmp_path / "TX.tsv")
    got = clinical_lr.risk_interval(d / "model", path)
    risk = dict(zip(new["patient_id"], clinical_lr.predict_risk(model, read_clinical(path))))
    assert list(got) == list(new["patient_id"])
    inside = [got[p][0] < risk[p] < got[p][1] for p in risk]
    assert np.mean(inside) >= 0.9 and all(0 < a < b < 1 for a, b in got.values())
    small = [write_table(clinical_table("TA", 75, 1), tmp_path / "TA.tsv"),
             write_table(clinical_table("TB", 65, 2), tmp_path / "TB.tsv")]
    # without a bootstrap there is no interval
    clinical_lr.save(clinical_lr.fit(small, seed=5, bootstrap=0), tmp_path / "none",
                     tmp_path / "s.tsv", tmp_path / "l.tsv")
    assert clinical_lr.risk_interval(tmp_path / "none", path) == {}
