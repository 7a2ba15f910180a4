"""ComBat harmonisation (mtnet.features.combat): the library's numbers on training centers, an
added per-center offset removed, an external center aligned without labels."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from mtnet.errors import InputError
from mtnet.features.combat import ComBat


def radiomics_like(rng, n: int, p: int = 25) -> np.ndarray:
    """Skewed positive features of unequal scales, correlated through a latent size."""
    size = rng.normal(size=(n, 1))
    scales = np.logspace(-2, 4, p)
    return scales * np.exp(0.4 * size + 0.3 * rng.normal(size=(n, p)))


def centers(rng, sizes=(40, 55, 35)):
    x = np.vstack([radiomics_like(rng, n) for n in sizes])
    batch = np.repeat([f"C{i}" for i in range(len(sizes))], sizes)
    return x, batch


def test_training_adjustment_is_neurocombats():
    from neuroCombat import neuroCombat

    rng = np.random.default_rng(0)
    x, batch = centers(rng)
    x[batch == "C1"] *= 1.3
    with contextlib.redirect_stdout(io.StringIO()):
        ref = neuroCombat(x.T.copy(), pd.DataFrame({"b": batch}), "b")["data"].T
    cb = ComBat.fit(x, batch)
    np.testing.assert_allclose(cb.transform(x, batch), ref, rtol=1e-10)


def test_combat_removes_an_offset_added_to_one_center():
    rng = np.random.default_rng(1)
    x, batch = centers(rng)
    sd = x.std(axis=0)
    shifted = x.copy()
    b = batch == "C1"
    shifted[b] += 2.0 * sd  # a scanner's HU offset: every feature of C1 moves by 2 SD
    gap_before = (shifted[b].mean(0) - shifted[~b].mean(0)) / sd
    assert np.all(gap_before > 1.5)
    out = ComBat.fit(shifted, batch, eb=True).transform(shifted, batch)
    gap_after = (out[b].mean(0) - out[~b].mean(0)) / sd
    assert np.all(np.abs(gap_after) < 0.3), gap_after.round(3)  # the centers' sampling noise
    # the offset itself is gone: up to a common location (the pooled mean moved with C1),
    # the result is ComBat's on the data without the offset
    plain = ComBat.fit(x, batch).transform(x, batch)
    # (not exactly: the shrinkage sees the offset in units of each feature's pooled SD)
    diff = ((out - out.mean(0)) - (plain - plain.mean(0))) / sd
    assert np.abs(diff).max() < 0.02
    # per center and feature ComBat is increasing and affine: ranks within a center stay
    for j in range(x.shape[1]):
        assert spearmanr(out[b, j], shifted[b, j])[0] == pytest.approx(1.0)


def test_an_external_center_is_aligned_from_its_own_rows_without_labels():
    rng = np.random.default_rng(2)
    x, batch = centers(rng)
    cb = ComBat.fit(x, batch)
    train_out = cb.transform(x, batch)
    external = radiomics_like(rng, 30)
    sd = x.std(axis=0)
    moved = external * 1.5 + 1.5 * sd  # another scanner: scale and offset
    out = cb.transform(moved, np.repeat("EXT", 30))
    ref = cb.transform(external, np.repeat("EXT", 30))
    # the external center lands where the unmoved one lands, near the training centers
    assert np.abs((out - ref) / sd).max() < 0.1
    gap = (out.mean(0) - train_out.mean(0)) / train_out.std(0)
    assert np.all(np.abs(gap) < 0.5)  # 3.2 SD apart without ComBat
    # the training parameters are not touched by the new center
    np.testing.assert_array_equal(cb.transform(x, batch), train_out)
    assert cb.batches == ["C0", "C1", "C2"]


def test_dict_round_trip_and_single_training_center():
    rng = np.random.default_rng(3)
    x, batch = centers(rng)
    cb = ComBat.fit(x, batch, features=[f"f{j}" for j in range(x.shape[1])])
    again = ComBat.from_dict(cb.to_dict())
    ext = radiomics_like(rng, 10)
    np.testing.assert_array_equal(again.transform(ext, ["E"] * 10), cb.transform(ext, ["E"] * 10))
    one = ComBat.fit(x[batch == "C0"], batch[batch == "C0"])
    np.testing.assert_allclose(one.transform(x[batch == "C0"], batch[batch == "C0"]),
                               x[batch == "C0"], rtol=1e-12)


def test_unusable_inputs():
    rng = np.random.default_rng(4)
    x, batch = centers(rng)
    cb = ComBat.fit(x, batch)
    with pytest.raises(InputError, match="center EXT.*one patient"):
        cb.transform(x[:1], ["EXT"])
    with pytest.raises(InputError, match="center C9.*at least 2 patients"):
        ComBat.fit(x[:41], np.r_[batch[:40], ["C9"]])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="impute"):
        ComBat.fit(bad, batch)
    bad = x.copy()
    bad[:, 3] = 1.0
    with pytest.raises(ValueError, match="constant"):
        ComBat.fit(bad, batch)
