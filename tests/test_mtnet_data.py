"""MTnet's inputs: crops read from the tumor stage's roi/ folders and put on a preset's
grid; the k-fold assignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from mtnet_toy import toy_cohort, write_roi

from mtnet.errors import InputError
from mtnet.model.mtnet import load_crops, resample_crops
from mtnet.model.splits import make_folds


@pytest.fixture(scope="module")
def roi(tmp_path_factory):
    root = tmp_path_factory.mktemp("tumor")
    toy = toy_cohort(6, seed=3, grid=24, centers=("TA", "TB"))
    for center in ("TA", "TB"):
        keep = toy["crops"]["center"] == center
        write_roi(root / center / "roi", {k: v[keep] for k, v in toy["crops"].items()})
    return root, toy["crops"]


def test_crops_come_back_in_the_asked_order_with_their_center(roi):
    root, crops = roi
    pids = ["TB-0003", "TA-0000", "TB-0001"]
    out = load_crops([root / "TA" / "roi", root / "TB" / "roi"], pids)
    assert list(out["patient_id"]) == pids and list(out["center"]) == ["TB", "TA", "TB"]
    idx = [list(crops["patient_id"]).index(p) for p in pids]
    # stored as int16 HU over a 400 HU window: back to within half a HU
    assert np.allclose(out["image"], crops["image"][idx], atol=0.5 / 400 + 1e-6)
    assert out["image"].dtype == np.float32
    assert np.array_equal(out["tumor"], crops["tumor"][idx]) and out["tumor"].dtype == np.uint8


def test_crops_are_resampled_on_load(roi):
    root, crops = roi
    out = load_crops([root / "TA" / "roi"], ["TA-0000"], grid=(12, 12, 12))
    assert out["image"].shape == (1, 12, 12, 12)
    ref = torch.nn.functional.interpolate(torch.from_numpy(crops["image"][:1])[:, None],
                                          size=(12, 12, 12), mode="trilinear", align_corners=False)
    assert np.allclose(out["image"], ref[:, 0].numpy(), atol=0.5 / 400 + 1e-6)
    assert set(np.unique(out["tumor"])) == {0, 1}
    # the tumor keeps its share of the box
    assert out["tumor"].mean() == pytest.approx(crops["tumor"][0].mean(), rel=0.25)


def test_a_tumor_too_small_for_the_grid_survives():
    image = np.zeros((1, 32, 32, 32), np.float32)
    tumor = np.zeros((1, 32, 32, 32), np.uint8)
    tumor[0, 5, 6, 7] = 1  # one voxel, missed by nearest neighbour at 8^3
    out = resample_crops({"image": image, "tumor": tumor, "liver": np.ones_like(tumor)}, (8, 8, 8))
    assert out["tumor"].sum() == 1 and out["tumor"][0, 1, 1, 1] == 1
    assert out["liver"].all()


def test_bad_crops_are_named(roi, tmp_path):
    root, crops = roi
    with pytest.raises(InputError, match="patient TA-9999, .*: no roi crop"):
        load_crops([root / "TA" / "roi"], ["TA-9999"])
    with pytest.raises(InputError, match="roi folder not found"):
        load_crops([tmp_path / "nowhere"], ["TA-0000"])
    twice = tmp_path / "TC" / "roi"
    write_roi(twice, {k: v[:1] for k, v in crops.items()})
    with pytest.raises(InputError, match="more than one center"):
        load_crops([root / "TA" / "roi", twice], ["TA-0000"])
    bad = tmp_path / "TD" / "roi"
    write_roi(bad, {**{k: v[:1] for k, v in crops.items()},
                    "tumor": np.zeros_like(crops["tumor"][:1])})
    with pytest.raises(InputError, match="center TD, patient TA-0000.*tumor mask is empty"):
        load_crops([bad], ["TA-0000"])
    old = tmp_path / "TE" / "roi"  # a crop of the former format: the windowed image, no HU
    old.mkdir(parents=True)
    np.savez_compressed(old / "TA-0000.npz", image=crops["image"][0], tumor=crops["tumor"][0],
                        liver=crops["liver"][0])
    with pytest.raises(InputError, match="TA-0000.npz.*lacks hu.*re-run the tumor stage"):
        load_crops([old], ["TA-0000"])


def _table():
    rows = []
    for center, n, events in (("A", 40, 6), ("B", 23, 3), ("C", 11, 2)):
        for i in range(n):
            rows.append({"center": center, "patient_id": f"{center}-{i:03d}", "mvi": int(i < events)})
    return pd.DataFrame(rows)


def test_folds_are_stratified_by_center_and_outcome_and_reproducible():
    table = _table()
    folds = make_folds(table, 5, seed=3)
    assert list(folds.columns) == ["center", "patient_id", "mvi", "fold"]
    assert list(folds["patient_id"]) == sorted(table["patient_id"])
    assert set(folds["fold"]) == {1, 2, 3, 4, 5}
    for _, cell in folds.groupby(["center", "mvi"]):
        counts = cell["fold"].value_counts().reindex(range(1, 6), fill_value=0)
        assert counts.max() - counts.min() <= 1
    assert folds.equals(make_folds(table, 5, seed=3))
    assert not folds.equals(make_folds(table, 5, seed=4))
    # row order does not matter, and another center changes no one else's fold
    shuffled = make_folds(table.sample(frac=1, random_state=0), 5, seed=3)
    assert shuffled.equals(folds)
    extra = pd.concat([table, pd.DataFrame({"center": ["D"] * 5, "patient_id": [f"D-{i}" for i in range(5)],
                                            "mvi": [0, 0, 0, 1, 0]})], ignore_index=True)
    grown = make_folds(extra, 5, seed=3)
    assert grown[grown["center"] != "D"].reset_index(drop=True).equals(folds)


def test_fold_input_errors():
    table = _table()
    with pytest.raises(InputError, match="lacks"):
        make_folds(table.drop(columns="mvi"), 5, 1)
    with pytest.raises(InputError, match="k >= 2"):
        make_folds(table, 1, 1)
    with pytest.raises(InputError, match="listed twice"):
        make_folds(pd.concat([table, table.iloc[:1]]), 5, 1)
    odd = table.copy()
    odd.loc[3, "mvi"] = 2
    with pytest.raises(InputError, match="patient A-003.*mvi must be 0/1"):
        make_folds(odd, 5, 1)
