"""The liver UNet backend on a small phantom set: training, held-out Dice, determinism,
and its use by segment_center. Coarse (8 mm) so that it trains in seconds on one core."""

from __future__ import annotations

import pandas as pd
import pytest
import SimpleITK as sitk
import torch
from liver_phantom import abdomen

from mtnet.errors import InputError
from mtnet.liver import qc, segment_center, unet
from mtnet.imaging import same_grid

SETTINGS = {"epochs": 25, "spacing_mm": 8.0, "crop": 24, "channels": [8, 16, 32],
            "batch_size": 2, "heldout_fraction": 0.3, "learning_rate": 0.01}


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    """Two source centers (4 + 3 patients) with liver masks, and one without."""
    root = tmp_path_factory.mktemp("unet")
    folders = {}
    for c, n in (("SA", 4), ("SB", 3), ("EX", 1)):
        images, livers = root / c / "images", root / c / "liver"
        images.mkdir(parents=True)
        livers.mkdir(parents=True)
        for i in range(n):
            ct, liver, _ = abdomen(4.0, seed=100 * len(c) + 10 * i + ord(c[1]), jitter_mm=10.0,
                                   liver_hu=95.0 + 8 * i)
            sitk.WriteImage(ct, str(images / f"{c}-{i}.nii.gz"))
            if c != "EX":
                sitk.WriteImage(liver, str(livers / f"{c}-{i}.nii.gz"))
            else:
                sitk.WriteImage(liver, str(root / "EX_truth.nii.gz"))
        folders[c] = (images, livers)
    return root, folders


@pytest.fixture(scope="module")
def trained(phantoms):
    root, folders = phantoms
    sources = [folders["SA"], folders["SB"]]
    model, heldout = root / "model.pt", root / "heldout_dice.tsv"
    table = unet.train([s[0] for s in sources], [s[1] for s in sources], model, heldout,
                       SETTINGS, seed=7, threads=1)
    return model, heldout, table


def test_split_is_per_center_and_seeded():
    cases = [{"center": c, "patient_id": f"{c}-{i}"} for c in ("A", "B") for i in range(10)]
    train, held = unet.split_cases(cases, 0.2, seed=1)
    assert len(held) == 4 and {c["center"] for c in held} == {"A", "B"}
    again = unet.split_cases(cases, 0.2, seed=1)[1]
    other = unet.split_cases(cases, 0.2, seed=2)[1]
    assert held == again and held != other
    # one patient in a center: nothing held out there
    assert unet.split_cases(cases[:1], 0.5, seed=1)[1] == []


def test_training_writes_model_and_heldout_dice(trained):
    model, heldout, table = trained
    written = pd.read_csv(heldout, sep="\t")
    assert list(written.columns) == unet.HELDOUT_COLUMNS
    assert set(written["center"]) == {"SA", "SB"} and len(written) == 2
    assert (written["dice"] >= 0.75).all(), written
    payload = torch.load(model, weights_only=True)
    held = {f"{r.center}/{r.patient_id}" for r in written.itertuples()}
    assert held == set(payload["heldout_patients"])
    assert not held & set(payload["train_patients"])


def test_training_is_deterministic_with_the_seed(phantoms, tmp_path):
    _, folders = phantoms
    sources = [folders["SA"], folders["SB"]]
    quick = {**SETTINGS, "epochs": 2}
    states = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        unet.train([s[0] for s in sources], [s[1] for s in sources], tmp_path / f"{name}.pt",
                   tmp_path / f"{name}.tsv", quick, seed=seed, threads=1)
        states.append(torch.load(tmp_path / f"{name}.pt", weights_only=True)["state_dict"])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])
    assert (tmp_path / "a.tsv").read_text() == (tmp_path / "b.tsv").read_text()


def test_segment_center_with_the_unet_backend(phantoms, trained, tmp_path):
    root, folders = phantoms
    model, _, _ = trained
    images, provided = folders["EX"]
    outputs = {"masks": str(tmp_path / "masks"), "qc": str(tmp_path / "qc.tsv"),
               "montage": str(tmp_path / "montage.png")}
    table = segment_center("EX", "unet", {"images": str(images), "provided": str(provided),
                                          "model": str(model)}, outputs,
                           {"volume_ml_range": [700, 3500]})
    mask = sitk.ReadImage(str(tmp_path / "masks" / "EX-0.nii.gz"))
    assert same_grid(mask, sitk.ReadImage(str(images / "EX-0.nii.gz")))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "EX_truth.nii.gz"))).astype(bool)
    assert qc.dice(sitk.GetArrayFromImage(mask).astype(bool), truth) >= 0.75
    assert table.loc[0, "backend"] == "unet"


def test_training_needs_two_patients_with_masks(phantoms, tmp_path):
    _, folders = phantoms
    with pytest.raises(InputError, match="at least 2 patients with liver masks, found 0"):
        unet.train([folders["EX"][0]], [folders["EX"][1]], tmp_path / "m.pt", tmp_path / "h.tsv",
                   SETTINGS, seed=1)


def test_the_learning_rate_decays_polynomially_to_zero():
    factors = [unet.poly_lr(e, 40) for e in range(41)]
    assert factors[0] == 1.0 and factors[-1] == 0.0
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert factors[20] == pytest.approx(0.5 ** 0.9)


def test_probabilities_come_back_smooth_and_post_processed():
    """A coarse probability ball, resampled linearly onto a finer grid: the ball's volume
    kept, the stray blob and the hole gone."""
    import numpy as np

    zz, yy, xx = np.mgrid[:20, :20, :20]
    prob = (((zz - 9.5) ** 2 + (yy - 9.5) ** 2 + (xx - 9.5) ** 2) <= 36).astype(np.float32)
    prob[9:11, 9:11, 9:11] = 0.0  # a hole
    prob[0:2, 0:2, 0:2] = 1.0  # a stray component
    coarse = sitk.GetImageFromArray(prob)
    coarse.SetSpacing((3.0, 3.0, 3.0))
    fine = sitk.Image(60, 60, 60, sitk.sitkUInt8)
    fine.SetOrigin((-1.0, -1.0, -1.0))
    out = unet.postprocess(unet.probability_on(prob, coarse, fine), fine)
    assert same_grid(out, fine)
    mask = sitk.GetArrayFromImage(out).astype(bool)
    assert not mask[:5, :5, :5].any() and mask[28:32, 28:32, 28:32].all()
    volume = mask.sum()  # a 6-voxel (18 mm) radius ball, in fine voxels of 1 mm^3
    assert abs(volume - 4 / 3 * np.pi * 18 ** 3) / (4 / 3 * np.pi * 18 ** 3) < 0.1
