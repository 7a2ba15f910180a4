"""MTnet's entry points on toy crops at the ``tiny`` size: every variant trains and predicts,
the image path learns, runs are reproducible, models round-trip through their folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mtnet_toy import toy_cohort

from mtnet.errors import InputError
from mtnet import trainer as T
from mtnet.model.mtnet import (VARIANTS, load, predict_ensemble, predict_mtnet, resolve, save,
                               train_mtnet)

QUICK = {"size": "tiny", "epochs": 2, "threads": 1}


@pytest.fixture(scope="module")
def train_set():
    return toy_cohort(24, seed=11)  # 32^3 crops, resampled to the tiny grid (16^3) on load


@pytest.fixture(scope="module")
def test_set():
    return toy_cohort(32, seed=12)


def _train(variant, data, settings=QUICK, seed=5, **kw):
    return train_mtnet(variant, data["crops"], data["clinical"], data["names"], data["y"],
                       data["strata"], settings, seed=seed, **kw)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_and_predicts(variant, train_set, test_set, tmp_path):
    model = _train(variant, train_set, workdir=tmp_path / "work")
    risk, h = predict_mtnet(model, test_set["crops"], test_set["clinical"])
    assert risk.shape == h.shape == (32,)
    assert np.isfinite(risk).all() and ((risk > 0) & (risk < 1)).all()
    if VARIANTS[variant]["image"]:
        assert ((h >= 0) & (h <= 1)).all() and len(np.unique(h)) > 1
    else:
        assert np.isnan(h).all()
    log = pd.read_csv(tmp_path / "work" / T.LOG_FILE, sep="\t", na_values=["NA"])
    assert list(log.columns) == T.LOG_COLUMNS and len(log) == 2
    assert log["seg_loss"].notna().all() == bool(VARIANTS[variant]["segmentation"])
    assert model.info["n_train"] + model.info["n_inner"] == 24
    if variant == "Model-Logistic-CR-DR":
        assert model.stepwise_table is not None
        assert model.config.n_factors == len(model.used_columns) < 4


def test_the_image_path_learns(test_set):
    """Model-DR (no clinical input) separates blob from no blob on unseen toy patients."""
    from mtnet.trainer import roc_auc

    model = _train("Model-DR", toy_cohort(64, seed=13), {"size": "tiny", "threads": 1})
    risk, _ = predict_mtnet(model, test_set["crops"], None)
    assert roc_auc(test_set["y"], risk) > 0.85
    hist = model.history
    assert hist["seg_loss"].iloc[-1] < hist["seg_loss"].iloc[0]
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]


def test_two_runs_give_byte_identical_predictions_and_the_folder_round_trips(
        train_set, test_set, tmp_path):
    a = _train("Model-CR-DR", train_set)
    b = _train("Model-CR-DR", train_set)
    ra, ha = predict_mtnet(a, test_set["crops"], test_set["clinical"])
    rb, hb = predict_mtnet(b, test_set["crops"], test_set["clinical"])
    assert ra.tobytes() == rb.tobytes() and ha.tobytes() == hb.tobytes()
    other = _train("Model-CR-DR", train_set, seed=6)
    assert other.network.state_dict()["head.layers.1.weight"].ne(
        a.network.state_dict()["head.layers.1.weight"]).any()

    save(a, tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["variant"] == "Model-CR-DR" and meta["settings"]["size"] == "tiny"
    assert meta["used_factors"] == train_set["names"] and len(meta["hscore_reference"]) == 24
    back = load(tmp_path / "model")
    rc, hc = predict_mtnet(back, test_set["crops"], test_set["clinical"])
    assert rc.tobytes() == ra.tobytes() and hc.tobytes() == ha.tobytes()
    # the saved log leaves out the epochs' wall times (they differ between runs)
    pd.testing.assert_frame_equal(back.history, a.history.drop(columns=["seconds"]), check_dtype=False)
    mean_r, mean_h = predict_ensemble([a, other], test_set["crops"], test_set["clinical"])
    ro, ho = predict_mtnet(other, test_set["crops"], test_set["clinical"])
    assert np.allclose(mean_r, (ra + ro) / 2) and np.allclose(mean_h, (ha + ho) / 2)


def test_the_logistic_variant_feeds_only_the_screened_factors(tmp_path):
    data = toy_cohort(60, seed=21, n_factors=4)
    data["clinical"][:, 1] = data["clinical"][:, 0] * 0.0 + np.random.default_rng(1).normal(size=60)
    model = _train("Model-Logistic-CR-DR", data, {**QUICK, "epochs": 1})
    assert 0 in model.used_columns  # f0 carries the outcome
    assert model.config.n_factors == len(model.used_columns)
    save(model, tmp_path / "m")
    table = pd.read_csv(tmp_path / "m" / "stepwise.tsv", sep="\t", na_values=["NA"])
    assert list(table.columns) == ["term", "coef", "OR", "ci_low", "ci_high", "p", "note"]
    assert set(table["term"]) == {"(intercept)", *[data["names"][c] for c in model.used_columns]}
    back = load(tmp_path / "m")
    r1, _ = predict_mtnet(model, data["crops"], data["clinical"])
    r2, _ = predict_mtnet(back, data["crops"], data["clinical"])
    assert r1.tobytes() == r2.tobytes()


def test_bad_inputs_are_named(train_set):
    d = train_set
    with pytest.raises(InputError, match="unknown MTnet variant"):
        _train("Model-XYZ", d)
    with pytest.raises(InputError, match="fixed by the variant"):
        _train("Model-DR", d, {**QUICK, "clinical": True})
    with pytest.raises(InputError, match="no segmentation loss"):
        _train("Model-NoSeg-CR-DR", d, {**QUICK, "seg_weight": 1.0})
    with pytest.raises(InputError, match="unknown MTnet settings"):
        _train("Model-DR", d, {**QUICK, "epocs": 3})
    with pytest.raises(InputError, match="needs the image crops"):
        train_mtnet("Model-DR", None, None, [], d["y"], d["strata"], QUICK, seed=1)
    bad = d["clinical"].copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match="column f2: missing or infinite"):
        train_mtnet("Model-CR", None, bad, d["names"], d["y"], d["strata"], QUICK, seed=1)
    with pytest.raises(InputError, match="4 columns but 3 factor names"):
        train_mtnet("Model-CR", None, d["clinical"], d["names"][:3], d["y"], d["strata"], QUICK, 1)
    with pytest.raises(InputError, match="one class only"):
        train_mtnet("Model-CR", None, d["clinical"], d["names"], np.zeros(24), d["strata"], QUICK, 1)
    with pytest.raises(InputError, match="not divisible"):
        _train("Model-DR", d, {**QUICK, "grid": (18, 16, 16)})


def test_settings_merge_preset_variant_and_overrides():
    r = resolve("Model-NoSeg-CR-DR", {"size": "paper", "epochs": 3, "augment": {"rotate_deg": 5}})
    assert r["grid"] == (96, 96, 96) and r["network"]["channels"] == (16, 32, 64, 128, 256)
    assert r["training"].epochs == 3 and r["training"].augment.rotate_deg == 5
    assert r["seg_weight"] == 0.0 and r["network"]["segmentation"] is False
    assert resolve("Model-CR-DR")["size"] == "cpu"
    assert resolve("Model-Logistic-CR-DR")["stepwise"] is True


def test_a_tumor_view_model_keeps_its_view_and_refuses_crops_seen_otherwise(tmp_path):
    from mtnet_toy import write_roi

    from mtnet.model.mtnet import load_crops

    data = toy_cohort(12, seed=21, centers=("TA",))
    write_roi(tmp_path / "TA" / "roi", data["crops"])
    pids = list(data["crops"]["patient_id"])
    grid = resolve("Model-DR", QUICK)["grid"]
    lesion = load_crops([tmp_path / "TA" / "roi"], pids, grid, view="tumor", margin_mm=8.0)
    settings = {**QUICK, "view": "tumor", "view_margin_mm": 8.0}
    model = train_mtnet("Model-DR", lesion, None, [], data["y"], data["strata"], settings, seed=3)
    assert model.view == ("tumor", 8.0)
    save(model, tmp_path / "model")
    back = load(tmp_path / "model")
    assert back.view == ("tumor", 8.0)
    risk, _ = predict_mtnet(back, lesion, None)
    assert risk.tobytes() == predict_mtnet(model, lesion, None)[0].tobytes()
    whole = load_crops([tmp_path / "TA" / "roi"], pids, grid)
    with pytest.raises(InputError, match="crops seen through liver, the model needs tumor\\+8mm"):
        predict_mtnet(back, whole, None)
    with pytest.raises(InputError, match="crops seen through tumor\\+8mm, the model needs liver"):
        train_mtnet("Model-DR", lesion, None, [], data["y"], data["strata"], QUICK, seed=3)
