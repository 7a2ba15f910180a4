"""The one split file: folds stratified by center and outcome, deterministic, stable when a
center is added."""

from __future__ import annotations

import pandas as pd
import pytest

from mtnet.errors import InputError
from mtnet.model.splits import fold_of, make_folds, read_folds, write_folds
from stats_synthetic import clinical_table, write_table


def _train():
    return pd.concat([clinical_table("TA", 97, 1), clinical_table("TB", 61, 2)], ignore_index=True)


def test_folds_are_stratified_by_center_and_outcome():
    train = _train()
    folds = make_folds(train, 5, seed=3)
    assert sorted(folds["fold"].unique()) == [1, 2, 3, 4, 5]
    for (_, mvi), group in folds.groupby(["center", "mvi"]):
        counts = group["fold"].value_counts()
        assert counts.max() - counts.min() <= 1 and len(counts) == min(5, len(group))
    sizes = folds["fold"].value_counts()
    assert sizes.max() - sizes.min() <= 2


def test_folds_are_deterministic_and_a_new_center_moves_no_other_patient(tmp_path):
    train = _train()
    one, two = make_folds(train, 5, seed=3), make_folds(train, 5, seed=3)
    assert one.equals(two)
    assert not one.equals(make_folds(train, 5, seed=4))
    more = pd.concat([train, clinical_table("TC", 40, 3)], ignore_index=True)
    grown = make_folds(more, 5, seed=3)
    assert grown[grown["center"] != "TC"].reset_index(drop=True).equals(one)
    path = tmp_path / "folds.tsv"
    tables = [write_table(clinical_table("TA", 97, 1), tmp_path / "TA.tsv"),
              write_table(clinical_table("TB", 61, 2), tmp_path / "TB.tsv")]
    written = write_folds(tables, path, 5, seed=3)
    back = read_folds(path)
    assert back["fold"].tolist() == written["fold"].tolist() == one["fold"].tolist()
    assert (fold_of(back, train) == one.set_index(["center", "patient_id"]).loc[
        list(zip(train["center"], train["patient_id"])), "fold"].to_numpy()).all()


def test_too_few_events_or_an_unknown_patient_are_errors():
    train = clinical_table("TA", 30, 1)
    train["mvi"] = 0
    train.loc[train.index[:3], "mvi"] = 1
    with pytest.raises(InputError, match="3 MVI event.*too few for 5 stratified folds"):
        make_folds(train, 5, seed=1)
    folds = make_folds(_train(), 5, seed=1)
    with pytest.raises(InputError, match="absent from the split file"):
        fold_of(folds, clinical_table("TX", 3, 9))


def test_leave_one_center_out_folds_are_the_centers(tmp_path):
    tables = [write_table(clinical_table(c, n, s), tmp_path / f"{c}.tsv")
              for c, n, s in (("TA", 20, 1), ("TB", 25, 2), ("TX", 15, 3))]
    folds = write_folds(tables, tmp_path / "f.tsv", 5, 1, scheme="leave-one-center-out",
                        centers=["TB", "TA", "TX"])
    assert folds.groupby("center")["fold"].unique().map(list).to_dict() == {"TA": [2], "TB": [1], "TX": [3]}


def test_held_out_predictions_are_the_out_of_fold_rows(tmp_path):
    import numpy as np

    from mtnet.model.predictions import oof_frame, write_heldout_predictions
    from mtnet.tables import read_tsv

    tx = clinical_table("TX", 12, 4)
    oof = oof_frame(tx, np.full(12, 3), np.linspace(0.1, 0.9, 12))
    oof.to_csv(tmp_path / "oof.tsv", sep="\t", index=False)
    out = write_heldout_predictions(tx, "Model-Clinical-LR", "TX", tmp_path / "oof.tsv", tmp_path / "p.tsv")
    back = read_tsv(tmp_path / "p.tsv")
    assert (back["split"] == "external").all() and np.allclose(back["risk"], np.linspace(0.1, 0.9, 12))
    assert out["mvi"].tolist() == tx["mvi"].tolist()
    with pytest.raises(InputError, match="without a held-out risk"):
        write_heldout_predictions(clinical_table("TY", 3, 5), "Model-Clinical-LR", "TY",
                                  tmp_path / "oof.tsv", tmp_path / "q.tsv")
