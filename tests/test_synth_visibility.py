"""Trait visibility (mtnet.synth.visibility): the handcrafted features measure what they say
on constructed volumes, and on a generated centre the best feature of each trait ranks the
patients by the true trait (|Spearman ρ| ≥ 0.6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from mtnet.synth import write_center
from mtnet.synth.visibility import FEATURES, center_features, lesion_features, visibility

SEED = 7
SPACING = (2.0, 2.0, 4.0)  # x, y, z mm (a training scanner)


def _volume(radius=15.0, gap=None, ring_hu=0.0, rim_hu=0.0, texture_sd=0.0, noise_sd=8.0, seed=0):
    """A liver block (100 HU) with one spherical tumor (70 HU) at the centre, (z, y, x)."""
    g = np.random.default_rng(seed)
    shape = (30, 80, 80)
    zz, yy, xx = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, SPACING[::-1])], indexing="ij")
    r = np.sqrt(xx**2 + yy**2 + zz**2)
    tumor = r <= radius
    hu = np.full(shape, 100.0)
    hu[tumor] = 70.0 + texture_sd * g.standard_normal(tumor.sum())
    hu[(r > radius) & (r <= radius + 5.0)] += ring_hu
    rim = tumor & ~ndimage.binary_erosion(tumor)
    hu[rim] = 100.0 + rim_hu
    if gap is not None:  # a vertical vessel (radius 4 mm, 175 HU) whose wall is `gap` mm from the tumor
        hu[np.sqrt((xx - (radius + gap + 4.0)) ** 2 + yy**2) <= 4.0] = 175.0
    hu += noise_sd * g.standard_normal(shape)
    liver = np.ones(shape, bool)
    liver[:, :, :2] = liver[:, :, -2:] = False
    return hu.astype(np.int16), tumor.astype(np.uint8), liver.astype(np.uint8)


def test_features_measure_constructed_lesions():
    plain = lesion_features(*_volume(), SPACING)
    assert plain["solidity"] > 0.85 and plain["sphericity"] > 0.8
    assert abs(plain["ring_minus_liver_hu"]) < 3 and plain["core_excess_sd_hu"] < 4
    assert plain["vessel_gap_mm"] >= 15  # no vessel in reach

    ring = lesion_features(*_volume(ring_hu=-30.0), SPACING)
    assert -33 < ring["ring_minus_liver_hu"] < -27
    rim = lesion_features(*_volume(rim_hu=40.0), SPACING)
    assert rim["rim_minus_core_hu"] - plain["rim_minus_core_hu"] > 35
    textured = lesion_features(*_volume(texture_sd=25.0), SPACING)
    assert 21 < textured["core_excess_sd_hu"] < 29  # the added 25 HU, the noise taken out
    gaps = (-2.0, 2.0, 6.0, 10.0)
    got = [lesion_features(*_volume(gap=gap), SPACING)["vessel_gap_mm"] for gap in gaps]
    # voxel centre to voxel centre: the wall-to-surface gap plus at most two in-plane voxels
    assert all(0 <= g - gap <= 4.0 for g, gap in zip(got, gaps)), got
    assert np.all(np.diff(got) > 2.0), got

    # a carved (lobulated) tumor is less solid and less spherical than the sphere
    hu, tumor, liver = _volume()
    zz, yy, xx = np.nonzero(tumor)
    angle = np.arctan2(yy - 39.5, xx - 39.5)
    r = np.hypot((yy - 39.5) * 2, (xx - 39.5) * 2)
    carve = r > 15.0 * (1 - 0.35 * (0.5 + 0.5 * np.sin(5 * angle)))
    tumor[zz[carve], yy[carve], xx[carve]] = 0
    carved = lesion_features(hu, tumor, liver, SPACING)
    assert carved["solidity"] < plain["solidity"] - 0.05 and carved["sphericity"] < plain["sphericity"] - 0.05


def test_empty_tumor_mask_is_an_input_error():
    from mtnet.errors import InputError

    hu, tumor, liver = _volume()
    with pytest.raises(InputError, match="empty tumor mask"):
        lesion_features(hu, np.zeros_like(tumor), liver, SPACING)


EXPECTED_SIGN = {"heterogeneity": 1, "margin_irregularity": -1, "anti_corona": -1, "capsule": 1, "vessel_contact": -1}


def test_traits_visible_on_a_generated_center(tmp_path):
    # a NIfTI training centre at a training scanner's resolution (YPH: 1.9 mm, 4 mm slices)
    settings = {"preset": "demo", "center": "YPH", "role": "train", "n_patients": 40, "n_events": 5}
    write_center(settings, SEED, tmp_path / "data", tmp_path / "truth")
    features = center_features(tmp_path / "data")
    assert len(features) == 40 and np.isfinite(features.drop(columns="patient_id").to_numpy()).all()
    truth = pd.read_csv(tmp_path / "truth" / "patients.tsv", sep="\t")
    table = visibility(features, truth)
    assert set(table["trait"]) == set(FEATURES)
    best = table[table["best"]].set_index("trait")
    for trait, sign in EXPECTED_SIGN.items():
        rho = best.loc[trait, "rho"]
        assert np.sign(rho) == sign and abs(rho) >= 0.6, (trait, best.loc[trait, "feature"], rho)


def test_center_features_reads_dicom_and_dicom_seg(tmp_path):
    settings = {"preset": "tiny", "center": "TB", "role": "train", "n_patients": 3, "n_events": 1}
    write_center(settings, SEED, tmp_path / "data", tmp_path / "truth")
    features = center_features(tmp_path / "data")
    assert list(features["patient_id"]) == ["TB-0001", "TB-0002", "TB-0003"]
    assert np.isfinite(features.drop(columns="patient_id").to_numpy()).all()
