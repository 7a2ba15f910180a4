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
from mtnet.model.mtnet.data import tumor_view
from mtnet.model.mtnet.variants import resolve
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


def _ramp_crop(shape=(40, 48, 56), spacing_zyx=(2.5, 1.5, 2.0)):
    """A crop whose image is a linear function of the physical position (trilinear sampling
    reproduces it exactly) and a box tumor off the centre."""
    sz, sy, sx = spacing_zyx
    z, y, x = np.indices(shape, dtype=np.float64)
    image = (0.004 * z * sz + 0.003 * y * sy + 0.002 * x * sx).astype(np.float32)
    tumor = np.zeros(shape, np.uint8)
    tumor[12:20, 10:22, 30:40] = 1  # 20 x 18 x 20 mm
    return image, tumor, np.ones(shape, np.uint8), np.asarray(spacing_zyx)


def test_the_tumor_view_is_a_cube_centred_on_the_lesion_at_the_grid_s_resolution():
    image, tumor, liver, spacing = _ramp_crop()
    grid, margin = (16, 16, 16), 6.0
    img, tum, liv = tumor_view(image, tumor, liver, spacing, grid, margin)
    assert img.shape == tum.shape == liv.shape == grid
    side = 20.0 + 2 * margin  # the longest extent (z and x: 20 mm) plus the margins
    centre = np.array([15.5, 15.5, 34.5]) * spacing  # mm, voxel centres (z, y, x)
    step = side / 16
    for idx in [(0, 0, 0), (15, 15, 15), (3, 9, 12), (8, 8, 8)]:
        pos = centre + (np.asarray(idx) + 0.5 - 8) * step
        assert img[idx] == pytest.approx(0.004 * pos[0] + 0.003 * pos[1] + 0.002 * pos[2],
                                         abs=1e-5), idx
    # the lesion fills its share of the cube, in the middle, and lies wholly inside it
    assert tum.sum() == pytest.approx((20 / side) * (18 / side) * (20 / side) * 16 ** 3, rel=0.2)
    assert np.allclose(np.argwhere(tum).mean(0), 7.5, atol=0.6)
    assert not tum[0].any() and not tum[-1].any() and not tum[:, :, 0].any()


def test_the_tumor_view_pads_outside_the_crop_and_keeps_a_tiny_lesion():
    image, _, liver, spacing = _ramp_crop()
    tumor = np.zeros_like(liver)
    tumor[0, 0, 0] = 1  # one voxel in the crop's corner: the cube reaches past it
    img, tum, liv = tumor_view(image, tumor, liver, spacing, (8, 8, 8), 20.0)
    assert (img[0] == 0).all() and (liv[0] == 0).all() and liv[-1].any()
    assert tum.sum() == 1 and tum[3, 3, 3] == 1


def test_crops_load_through_the_view_the_model_was_trained_with(roi):
    root, crops = roi
    whole = load_crops([root / "TA" / "roi"], ["TA-0000"], grid=(8, 8, 8))
    lesion = load_crops([root / "TA" / "roi"], ["TA-0000"], grid=(8, 8, 8), view="tumor",
                        margin_mm=4.0)
    assert list(whole["view"]) == ["liver"] and list(lesion["view"]) == ["tumor+4mm"]
    # the lesion fills far more of its own view than of the liver box
    assert lesion["tumor"].mean() > 2 * whole["tumor"].mean()
    with pytest.raises(InputError, match="unknown MTnet view 'lesion'"):
        load_crops([root / "TA" / "roi"], ["TA-0000"], grid=(8, 8, 8), view="lesion")
    with pytest.raises(InputError, match="the tumor view needs a grid"):
        load_crops([root / "TA" / "roi"], ["TA-0000"], view="tumor")
    with pytest.raises(InputError, match="unknown MTnet view"):
        resolve("Model-DR", {"size": "tiny", "view": "lesion"})
    assert resolve("Model-DR", {"size": "tiny", "view": "tumor"})["view"] == "tumor"
