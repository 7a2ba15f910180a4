"""The H-score: its defining formula on constructed feature maps, the map to [0, 1] fixed on
the training patients, and its behaviour under a trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mtnet_toy import toy_cohort, toy_crop

from mtnet.model.mtnet import HScoreReference, predict_mtnet, raw_heterogeneity, train_mtnet


def _mask(shape=(8, 8, 8)):
    return torch.ones(1, 1, *shape)


def test_identical_feature_vectors_have_no_heterogeneity():
    f = torch.randn(1, 5, 1, 1, 1).expand(1, 5, 4, 4, 4).contiguous()
    assert raw_heterogeneity(f, _mask()).item() == pytest.approx(0.0, abs=1e-6)


def test_k_orthogonal_directions_in_equal_parts_give_one_minus_one_over_k():
    for k in (2, 4):
        f = torch.zeros(1, 4, 4, 4, 4)
        for j in range(k):  # k slabs along D, each its own direction
            f[0, j, j * (4 // k):(j + 1) * (4 // k)] = 1.0
        assert raw_heterogeneity(f, _mask()).item() == pytest.approx(1 - 1 / k, abs=1e-6)


def test_magnitudes_do_not_count_and_only_the_tumor_does():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 6, 4, 4, 4, generator=g)
    mask = torch.zeros(2, 1, 8, 8, 8)
    mask[:, :, :4] = 1  # the upper half of the crop (= feature slices 0, 1)
    h = raw_heterogeneity(f, mask)
    scaled = f * torch.rand(2, 1, 4, 4, 4, generator=g).add(0.5) * 7  # per-voxel magnitudes
    assert torch.allclose(raw_heterogeneity(scaled, mask), h, atol=1e-5)
    outside = f.clone()
    outside[:, :, 2:] = torch.randn(2, 6, 2, 4, 4, generator=g)
    assert torch.allclose(raw_heterogeneity(outside, mask), h, atol=1e-6)
    # by hand: 1 - |weighted mean of unit vectors|^2 over the covered voxels
    u = f / f.norm(dim=1, keepdim=True)
    mean = u[:, :, :2].mean(dim=(2, 3, 4))
    assert torch.allclose(h, 1 - (mean ** 2).sum(1), atol=1e-6)
    assert ((h > 0) & (h < 1)).all()


def test_partly_covered_voxels_weigh_by_their_coverage():
    f = torch.zeros(1, 2, 2, 1, 1)
    f[0, 0, 0] = 1.0  # voxel 0 points along e0, voxel 1 along e1
    f[0, 1, 1] = 1.0
    mask = torch.zeros(1, 1, 4, 2, 2)
    mask[..., :2, :, :] = 1  # voxel 0 fully covered
    mask[..., 2, 0, 0] = 1  # voxel 1 one eighth covered
    w0, w1 = 1.0, 1 / 8
    expected = 1 - ((w0 / (w0 + w1)) ** 2 + (w1 / (w0 + w1)) ** 2)
    assert raw_heterogeneity(f, mask).item() == pytest.approx(expected, abs=1e-6)


def test_the_training_distribution_maps_the_raw_score_to_0_1():
    ref = HScoreReference([0.3, 0.1, 0.2, 0.2, 0.5])
    assert ref.transform([0.1, 0.5])[0] == 0.0 and ref.transform([0.5])[0] == 1.0
    assert ref.transform([0.2])[0] == pytest.approx(0.375)  # ties: mean rank of 0.25 and 0.5
    assert ref.transform([0.0, 0.9]).tolist() == [0.0, 1.0]  # outside the range: clipped
    grid = np.linspace(0, 0.6, 61)
    h = ref.transform(grid)
    assert np.all(np.diff(h) >= 0) and np.isnan(ref.transform([np.nan])[0])
    odd = HScoreReference(np.arange(11) / 10)
    assert odd.transform([0.5])[0] == pytest.approx(0.5)  # the training median maps to 0.5
    assert HScoreReference(ref.to_list()).transform(grid).tolist() == h.tolist()
    with pytest.raises(ValueError):
        HScoreReference([0.4])


def test_a_heterogeneous_tumor_scores_higher_than_a_homogeneous_one():
    """Under one trained Model-DR, pairs of crops that differ only in the tumor's texture."""
    toy = toy_cohort(24, seed=31)
    model = train_mtnet("Model-DR", toy["crops"], None, [], toy["y"], toy["strata"],
                        {"size": "tiny", "epochs": 3, "threads": 1}, seed=2)
    pairs = []
    for i in range(8):
        pairs += [toy_crop(np.random.default_rng(500 + i), 32, heterogeneity=h) for h in (0.0, 0.2)]
    crops = {k: np.stack([p[k] for p in pairs]) for k in ("image", "tumor", "liver")}
    _, h = predict_mtnet(model, crops, None)
    homogeneous, heterogeneous = h[0::2], h[1::2]
    assert (heterogeneous > homogeneous).all(), (homogeneous, heterogeneous)
