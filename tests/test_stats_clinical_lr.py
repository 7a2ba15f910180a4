"""Model-Clinical-LR: fit on generated pooled training tables, predict per center."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from mtnet.errors import InputError
from mtnet.factors import Encoding
from mtnet.model import clinical_lr
from mtnet.tables import PREDICTION_COLUMNS, read_clinical
from stats_synthetic import clinical_table, write_table


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("lr")
    tables = [
        write_table(clinical_table("TA", 300, 1), d / "TA.tsv"),
        write_table(clinical_table("TB", 260, 2), d / "TB.tsv"),
    ]
    model = clinical_lr.fit_and_save(tables, d / "model.json", d / "coefficients.tsv")
    return d, tables, model


def test_maximum_likelihood_fit_and_coefficients(fitted):
    d, tables, model = fitted
    assert model["fit"]["method"] == "maximum likelihood"
    coef = pd.read_csv(d / "coefficients.tsv", sep="\t")
    assert list(coef.columns) == ["term", "coef", "OR", "ci_low", "ci_high", "p", "note"]
    terms = coef.set_index("term")
    # the generator's true factors come out with OR > 1 and p < 0.05
    for term in ("bclc[B]", "invasive_shape[1]", "corona_low_attenuation[1]"):
        assert terms.loc[term, "OR"] > 1.5 and terms.loc[term, "p"] < 0.05, term
        assert terms.loc[term, "ci_low"] < terms.loc[term, "OR"] < terms.loc[term, "ci_high"]
    assert np.allclose(terms["OR"], np.exp(terms["coef"]))
    # encoding as tabulated: dummies against the reference levels
    assert {
        "sex[F]",
        "treatment[TACE]",
        "treatment[ablation]",
        "bclc[A]",
        "lesion_number[>3]",
        "afp_ng_ml[>400]",
        "age",
        "max_diameter_mm",
    } <= set(terms.index)
    # per-unit coefficients equal a plain statsmodels fit on the unstandardised design
    train = pd.concat([read_clinical(t) for t in tables], ignore_index=True)
    x = Encoding.from_dict(model["encoding"]).matrix(train)
    ref = sm.Logit(train["mvi"].to_numpy(float), sm.add_constant(x)).fit(disp=0, method="newton")
    assert np.allclose(coef["coef"], ref.params, atol=1e-6)
    assert np.allclose(coef["p"], ref.pvalues, atol=1e-6)
    stored = json.loads((d / "model.json").read_text())
    assert [c["term"] for c in stored["coefficients"]] == coef["term"].tolist()


def test_predict_table_contract(fitted, tmp_path):
    d, tables, model = fitted
    ext = clinical_table("TX", 90, 3)
    out = clinical_lr.predict_table(
        d / "model.json",
        write_table(ext, tmp_path / "TX.tsv"),
        center="TX",
        role="external",
        out_path=tmp_path / "p.tsv",
    )
    back = pd.read_csv(tmp_path / "p.tsv", sep="\t", dtype={"patient_id": str})
    assert list(back.columns) == PREDICTION_COLUMNS
    assert (back["split"] == "external").all() and (back["model"] == "Model-Clinical-LR").all()
    assert back["patient_id"].tolist() == ext["patient_id"].tolist()
    assert back["risk"].between(0, 1).all() and back["mvi"].tolist() == ext["mvi"].tolist()
    train = clinical_lr.predict_table(
        d / "model.json", tables[0], center="TA", role="train", out_path=tmp_path / "a.tsv"
    )
    assert (train["split"] == "apparent").all()
    # maximum likelihood with an intercept: mean fitted risk = event rate on the training set
    both = pd.concat([read_clinical(t) for t in tables], ignore_index=True)
    risk = clinical_lr.predict_risk(model, both)
    assert risk.mean() == pytest.approx(both["mvi"].mean(), abs=1e-8)


def test_small_pooled_tables_fall_back_to_l2(tmp_path, caplog):
    """~20 patients per center and a handful of events: separation, L2 penalty, NA CIs."""
    a = clinical_table("TA", 20, 11)
    b = clinical_table("TB", 22, 12)
    a["enhancement_ratio"] = np.nan  # entirely missing: dropped with a reason
    b["enhancement_ratio"] = np.nan
    a["hbv"] = 1
    b["hbv"] = 1  # no variation: dropped
    a.loc[a.index[:3], "age"] = np.nan  # partly missing: imputed
    tables = [write_table(a, tmp_path / "TA.tsv"), write_table(b, tmp_path / "TB.tsv")]
    with caplog.at_level(logging.INFO):
        model = clinical_lr.fit_and_save(tables, tmp_path / "m.json", tmp_path / "c.tsv")
    assert model["fit"]["method"] == "L2-penalised"
    dropped = {d["column"]: d["reason"] for d in model["encoding"]["dropped"]}
    assert "entirely NA" in dropped["enhancement_ratio"] and "no variation" in dropped["hbv"]
    assert "dropped enhancement_ratio" in caplog.text and "L2 penalty" in caplog.text
    coef = pd.read_csv(tmp_path / "c.tsv", sep="\t")
    assert coef["ci_low"].isna().all() and coef["note"].str.contains("penalised fit").all()
    # the stored solution maximises log L - lambda/2 |beta_std|^2 (penalised score = 0), with
    # lambda the grid's best by cross-validated log-likelihood
    lam = model["fit"]["l2_penalty"]
    cv = model["fit"]["penalty_cv"]
    assert len(cv) == 21 and lam == max(cv, key=lambda r: (round(r["cv_loglik"], 9), r["penalty"]))["penalty"]
    train = pd.concat([a, b], ignore_index=True)
    x = Encoding.from_dict(model["encoding"]).matrix(train)
    mean = np.array(model["encoding"]["mean"])
    sd = np.array(model["encoding"]["sd"])
    beta = coef["coef"].to_numpy()
    beta_std = beta[1:] * sd
    mu = clinical_lr.predict_risk(model, train)
    xs = np.column_stack([np.ones(len(x)), (x - mean) / sd])
    grad = xs.T @ (train["mvi"].to_numpy(float) - mu)
    grad[1:] -= lam * beta_std
    assert np.max(np.abs(grad)) < 1e-6
    # predictions for a center whose table misses a factor entirely: imputed, logged
    ext = clinical_table("TX", 15, 13).drop(columns=["age"])
    out = clinical_lr.predict_table(
        tmp_path / "m.json",
        write_table(ext, tmp_path / "TX.tsv"),
        "TX",
        "external",
        tmp_path / "p.tsv",
    )
    assert out["risk"].notna().all()


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
    with pytest.raises(
        InputError, match=r"center TX, patient TX-0005, column bclc.*unknown code 'X'"
    ):
        clinical_lr.predict_table(
            d / "model.json",
            write_table(bad, tmp_path / "bad.tsv"),
            "TX",
            "external",
            tmp_path / "p.tsv",
        )
    with pytest.raises(InputError, match="unknown role"):
        clinical_lr.predict_table(
            d / "model.json", tmp_path / "bad.tsv", "TX", "test", tmp_path / "p.tsv"
        )


def test_penalty_choice_is_seeded_and_deterministic(tmp_path):
    a, b = clinical_table("TA", 20, 11), clinical_table("TB", 22, 12)
    tables = [write_table(a, tmp_path / "TA.tsv"), write_table(b, tmp_path / "TB.tsv")]
    one = clinical_lr.fit(tables, seed=3)
    two = clinical_lr.fit(tables, seed=3)
    assert one["fit"]["method"] == "L2-penalised"
    assert one["coefficients"] == two["coefficients"] and one["fit"] == two["fit"]
    assert one["fit"]["seed"] == 3 and one["fit"]["l2_penalty"] in clinical_lr.PENALTY_GRID
