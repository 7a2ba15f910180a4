"""mtnet.factors: one home for codes, groupings and the model encoding, and the documented
rule for levels the training centers lack (Child-Pugh C, BCLC C/D)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from mtnet import factors
from mtnet.factors import CANONICAL, MODEL_FACTORS, Encoding
from mtnet.io import clinical
from mtnet.model import clinical_lr
from mtnet.tables import read_clinical
from stats_synthetic import clinical_table, write_table


def test_every_code_ingestion_accepts_is_a_level_the_encoding_knows():
    for col in MODEL_FACTORS:
        f = CANONICAL[col]
        if f.kind == "code":
            assert factors.levels(col) == f.codes, col
    assert CANONICAL["child_pugh"].codes == ("A", "B", "C")
    assert CANONICAL["bclc"].codes == ("0", "A", "B", "C", "D")


def test_groupings_of_the_paper():
    assert factors.afp_group([3, 25, 400, 401, np.nan]).tolist() == ["<25", "25-400", "25-400", ">400", pd.NA]
    assert factors.lesion_group([1, 2, 3, 4, 9]).tolist() == ["1", "2", "3", ">3", ">3"]
    df = pd.DataFrame({"bclc": ["B", "0", None, "A"], "lesion_number": [1, 5, 2, 3]})
    assert factors.level_order("bclc", set(factors.tabulated(df, "bclc").dropna())) == ["0", "A", "B"]


def _train(n=120, seed=1):
    df = clinical_table("TA", n, seed)
    assert set(df["child_pugh"]) <= {"A", "B"} and set(df["bclc"]) <= {"0", "A", "B"}
    return df


def test_unseen_levels_are_pooled_with_the_nearest_level_present(caplog):
    enc = Encoding.fit(_train())
    assert enc.pooled == {"child_pugh": {"C": "B"}, "bclc": {"C": "B", "D": "B"}}
    new = _train(6, seed=2).reset_index(drop=True)
    as_b = new.assign(child_pugh="B", bclc="B")
    unseen = new.assign(child_pugh="C", bclc=["C", "D", "C", "D", "C", "D"])
    with caplog.at_level(logging.WARNING):
        x_unseen = enc.matrix(unseen, center="TX")
    assert np.array_equal(x_unseen, enc.matrix(as_b))
    assert "6 patient(s) with child_pugh C pooled with B" in caplog.text
    # an unordered factor's unseen level goes to the reference level
    no_ablation = _train().assign(treatment=lambda d: d["treatment"].replace("ablation", "TACE"))
    enc2 = Encoding.fit(no_ablation)
    assert enc2.pooled["treatment"] == {"ablation": "resection"}


def test_a_level_present_in_training_gets_its_own_term():
    train = _train()
    train.loc[train.index[:4], "bclc"] = "C"
    enc = Encoding.fit(train)
    assert "bclc[C]" in enc.names and enc.pooled["bclc"] == {"D": "C"}


def test_child_pugh_c_patient_in_a_training_center_trains_and_predicts(tmp_path, caplog):
    ta = _train(150, 3)
    ta.loc[ta.index[0], "child_pugh"] = "C"
    # ingestion accepts the code
    assert not [p for p in clinical.validate(ta.copy(), "TA") if p.column == "child_pugh"]
    tables = [write_table(ta, tmp_path / "TA.tsv"), write_table(_train(130, 4), tmp_path / "TB.tsv")]
    model = clinical_lr.fit(tables, seed=1)
    clinical_lr.save(model, tmp_path / "m", tmp_path / "c.tsv", tmp_path / "l.tsv")
    assert "child_pugh[C]" in [c["term"] for c in model["coefficients"]]
    ext = clinical_table("TX", 40, 5)
    ext.loc[ext.index[:3], "child_pugh"] = "C"
    ext.loc[ext.index[3:5], "bclc"] = "D"
    with caplog.at_level(logging.WARNING):
        out = clinical_lr.predict_table(tmp_path / "m" / "model.json", write_table(ext, tmp_path / "TX.tsv"),
                                        "TX", "external", tmp_path / "p.tsv")
    assert out["risk"].between(0, 1).all() and len(out) == 40
    assert "bclc D pooled with B" in caplog.text


def test_encoding_round_trips_and_standardises(tmp_path):
    train = _train()
    enc = Encoding.fit(train)
    back = Encoding.from_dict(enc.to_dict())
    assert np.array_equal(back.matrix(train), enc.matrix(train))
    z = enc.standardized(train)
    assert np.allclose(z.mean(axis=0), 0) and np.allclose(z.std(axis=0), 1)
    path = write_table(train, tmp_path / "t.tsv")
    assert np.array_equal(enc.matrix(read_clinical(path)), enc.matrix(train))


def test_a_factor_outside_the_model_factors_is_refused():
    with pytest.raises(ValueError, match="not a model factor"):
        Encoding.fit(_train(), factors=["location"])
