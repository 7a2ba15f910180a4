"""Liver backends and QC on the phantom (tests/liver_phantom.py); error paths."""

from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from liver_phantom import abdomen

from mtnet.errors import InputError
from mtnet.liver import classical, join_tumor, qc, segment_center, totalseg
from mtnet.imaging import same_grid

SETTINGS = {"default_backend": "classical", "volume_ml_range": [700, 3500],
            "totalsegmentator": {"weights_dir": None}}


def arr(img):
    return sitk.GetArrayFromImage(img).astype(bool)


# ------------------------------------------------------------------ QC measures


def test_dice_and_volume_on_known_masks():
    a = np.zeros((10, 10, 10), bool)
    b = np.zeros_like(a)
    a[2:6, 2:6, 2:6] = True  # 64 voxels
    b[2:6, 2:6, 4:8] = True  # 64 voxels, 32 shared
    assert qc.dice(a, b) == pytest.approx(0.5)
    assert qc.dice(a, a) == 1.0
    assert qc.volume_ml(a, (2.0, 2.0, 2.0)) == pytest.approx(64 * 8 / 1000)
    assert qc.volume_outlier(500, [700, 3500]) and not qc.volume_outlier(1500, [700, 3500])


def test_average_surface_distance_of_shifted_cube():
    a = np.zeros((30, 30, 30), bool)
    a[5:20, 5:20, 5:20] = True
    assert qc.average_surface_distance(a, a, (1, 1, 1)) == 0.0
    b = np.roll(a, 2, axis=2)
    asd = qc.average_surface_distance(a, b, (1.0, 1.0, 3.0))
    # faces normal to x move by 2 voxels = 6 mm; the other faces mostly coincide
    assert 0.5 < asd < 6.0
    assert np.isnan(qc.average_surface_distance(a, np.zeros_like(a), (1, 1, 1)))


def _asd_whole_image(a, b, spacing):
    """The definition over the whole image: distance transforms of every surface."""
    from scipy import ndimage as ndi

    surface = [m & ~ndi.binary_erosion(m, border_value=0) for m in (a, b)]
    to_b = ndi.distance_transform_edt(~surface[1], sampling=spacing)
    to_a = ndi.distance_transform_edt(~surface[0], sampling=spacing)
    return float(np.concatenate([to_b[surface[0]], to_a[surface[1]]]).mean())


def _blob(shape, seed, level=0.6, sigma=3.0):
    from scipy import ndimage as ndi

    noise = np.random.default_rng(seed).normal(size=shape)
    smooth = ndi.gaussian_filter(noise, sigma)
    return smooth > level * smooth.std()


def test_average_surface_distance_on_surfaces_equals_the_whole_image_definition():
    """Surface voxels in the joint box and a k-d tree give the distance transforms' ASD."""
    shape = (40, 48, 56)
    cube = np.zeros(shape, bool)
    cube[8:30, 10:40, 12:44] = True
    border = np.zeros(shape, bool)
    border[:, :20, 30:] = True  # touches three faces of the array
    far = np.zeros(shape, bool)
    far[30:38, 40:46, 2:9] = True
    inner = np.zeros(shape, bool)
    inner[14:22, 18:30, 20:34] = True
    ct, liver, _ = abdomen(4.0, seed=2, jitter_mm=6.0)
    found = arr(classical.segment(ct))
    pairs = [
        (cube, np.roll(cube, 3, axis=2), (1.0, 1.0, 3.0)),
        (cube, border, (2.5, 0.8, 0.8)),
        (border, far, (1.5, 1.5, 1.5)),  # disjoint
        (cube, inner, (2.0, 1.0, 1.0)),  # one inside the other
        (_blob(shape, 1), _blob(shape, 2), (1.5, 1.5, 1.5)),  # many components
        (_blob(shape, 3), _blob(shape, 3, level=0.8), (3.0, 0.7, 0.9)),
        (found, arr(liver), ct.GetSpacing()[::-1]),  # a liver mask and its truth
    ]
    for a, b, spacing in pairs:
        assert not np.array_equal(a, b)
        expected = _asd_whole_image(a, b, spacing)
        assert qc.average_surface_distance(a, b, spacing) == pytest.approx(expected, abs=1e-6)
        assert qc.average_surface_distance(b, a, spacing) == pytest.approx(expected, abs=1e-6)
    assert qc.average_surface_distance(found, found, (1.5, 1.5, 1.5)) == 0.0


# ------------------------------------------------------------------ classical backend


@pytest.mark.parametrize("spacing,seed,jitter", [(3.0, 0, 0.0), (2.0, 1, 8.0)])
def test_classical_separates_liver_from_distractors(spacing, seed, jitter):
    ct, liver, _ = abdomen(spacing, seed=seed, jitter_mm=jitter)
    mask = classical.segment(ct)
    assert same_grid(mask, ct)
    assert mask.GetPixelID() == sitk.sitkUInt8
    m, truth = arr(mask), arr(liver)
    assert qc.dice(m, truth) >= 0.95
    # the hypodense tumor inside the liver is part of the liver mask (holes filled)
    _, _, tumor = abdomen(spacing, seed=seed, jitter_mm=jitter)
    assert arr(tumor)[m].sum() >= 0.95 * arr(tumor).sum()


def test_classical_on_a_non_identity_direction_returns_the_input_grid():
    ct, liver, _ = abdomen(4.0, seed=3)
    flipped = sitk.Flip(ct, [True, False, False])  # direction (-1, 1, 1)
    assert not np.allclose(flipped.GetDirection(), np.eye(3).ravel())
    mask = classical.segment(flipped)
    assert same_grid(mask, flipped)
    back = arr(sitk.Flip(mask, [True, False, False]))
    assert qc.dice(back, arr(liver)) >= 0.95


@pytest.mark.parametrize("spleen_hu", [120.0, 85.0])  # portal phase brighter, plain CT darker
def test_drop_spleen_cuts_a_broadly_touching_spleen(spleen_hu):
    rng = np.random.default_rng(0)
    shape, spacing = (30, 40, 60), np.array([3.0, 3.0, 3.0])
    region = np.zeros(shape, bool)
    region[5:25, 10:30, 5:40] = True  # liver: right and centre (low x)
    region[5:25, 10:30, 40:55] = True  # spleen: far left, touching along a whole face
    hu = np.where(region, 100.0, -100.0) + rng.normal(0, 10, shape)
    hu[5:25, 10:30, 40:55] += spleen_hu - 100.0
    anatomy = classical.Anatomy(cx=30.0, cy=20.0, half_width=28.0, lungs=np.zeros(shape, bool),
                                spine_xy=None)
    out = classical.drop_spleen(region, hu, 100.0, anatomy, spacing)
    assert out[5:25, 10:30, 5:38].all()  # the liver stays
    assert out[5:25, 10:30, 43:55].sum() < 0.05 * 20 * 20 * 12  # the spleen goes
    # the same HU everywhere: nothing to cut
    same = classical.drop_spleen(region, np.where(region, 100.0, -100.0), 100.0, anatomy, spacing)
    assert np.array_equal(same, region)


def test_drop_prevertebral_vessels_cuts_the_ivc_below_its_junction_only():
    shape, spacing = (12, 60, 60), np.array([3.0, 3.0, 3.0])
    region = np.zeros(shape, bool)
    region[:, 5:35, 0:30] = True  # liver: 30 x 30 voxels in every slice
    region[:, 30:35, 35:40] = True  # IVC: 5 x 5 voxels (225 mm2) in front of the spine
    region[8:, 30:35, 30:35] = True  # joined to the liver in the top slices only
    region[:, 50:52, 50:52] = True  # a speck (36 mm2) in front of the spine ...
    region[8:, 33:52, 50:52] = True  # ... joined to the IVC above
    region[8:, 33:35, 39:52] = True
    lungs = np.zeros(shape, bool)

    def anatomy(spine_xy):
        return classical.Anatomy(cx=30.0, cy=30.0, half_width=30.0, lungs=lungs, spine_xy=spine_xy)

    out = classical.drop_prevertebral_vessels(region, anatomy((40.0, 52.0)), spacing)
    assert not out[:8, 30:35, 35:40].any()  # the IVC's separate cross-sections go
    assert out[8:, 30:35, 35:40].all()  # where it joins the liver in the slice it stays
    assert out[:8, 50:52, 50:52].all()  # a speck is not a vessel's lumen
    assert np.array_equal(out[:, :, :30], region[:, :, :30])  # the liver is untouched
    # a piece far to the side of the spine, or no spine found: nothing changes
    assert np.array_equal(classical.drop_prevertebral_vessels(region, anatomy((5.0, 52.0)), spacing), region)
    assert np.array_equal(classical.drop_prevertebral_vessels(region, anatomy(None), spacing), region)


def test_classical_fails_clearly_without_a_body():
    air = sitk.GetImageFromArray(np.full((20, 20, 20), -1000, np.int16))
    with pytest.raises(classical.SegmentationFailed):
        classical.segment(air)


# ------------------------------------------------------------------ segment_center


def test_join_tumor_adds_touching_lesions_only():
    liver = np.zeros((30, 30, 30), bool)
    liver[5:25, 5:25, 5:15] = True
    tumor = np.zeros_like(liver)
    tumor[10:16, 10:16, 12:20] = True  # bulges out of the liver: 3 of 8 columns inside
    tumor[2:4, 26:28, 26:28] = True  # a lesion away from the liver
    joined, added = join_tumor(liver, tumor)
    assert joined[10:16, 10:16, 12:20].all()
    assert not joined[2:4, 26:28, 26:28].any()
    assert added == pytest.approx(6 * 6 * 5 / tumor.sum())
    assert join_tumor(liver, np.zeros_like(liver))[1] == 0.0


def test_segment_center_tumor_on_another_grid_names_patient(tmp_path):
    inputs, outputs = _center(tmp_path, n=1, truth=False)
    _, _, other = abdomen(3.0, seed=1)
    sitk.WriteImage(other, os.path.join(inputs["tumor"], "C1-0000.nii.gz"))
    with pytest.raises(InputError, match="patient C1-0000.*tumor mask is on another grid"):
        segment_center("C1", "classical", inputs, outputs, SETTINGS)



def _center(tmp_path, n=2, spacing=4.0, with_provided=False, truth=True):
    images = tmp_path / "ingest" / "C1" / "images"
    provided = tmp_path / "ingest" / "C1" / "liver"
    tumors = tmp_path / "ingest" / "C1" / "tumor"
    truth_dir = tmp_path / "synth" / "C1" / "truth"
    for d in (images, provided, tumors, truth_dir / "liver_masks"):
        d.mkdir(parents=True)
    for i in range(n):
        ct, liver, tumor = abdomen(spacing, seed=10 + i, jitter_mm=6.0)
        pid = f"C1-{i:04d}"
        sitk.WriteImage(ct, str(images / f"{pid}.nii.gz"))
        sitk.WriteImage(tumor, str(tumors / f"{pid}.nii.gz"))
        if truth:
            sitk.WriteImage(liver, str(truth_dir / "liver_masks" / f"{pid}.nii.gz"))
        if with_provided:
            sitk.WriteImage(liver, str(provided / f"{pid}.nii.gz"))
    inputs = {"images": str(images), "provided": str(provided), "tumor": str(tumors)}
    if truth:
        inputs["truth"] = str(truth_dir)
    out = tmp_path / "liver" / "C1"
    outputs = {"masks": str(out / "masks"), "qc": str(out / "qc.tsv"),
               "montage": str(out / "montage.png")}
    return inputs, outputs


def test_segment_center_classical_writes_masks_qc_and_montage(tmp_path):
    inputs, outputs = _center(tmp_path)
    table = segment_center("C1", "classical", inputs, outputs, SETTINGS, threads=1)
    qc_table = pd.read_csv(outputs["qc"], sep="\t")
    assert list(qc_table.columns) == qc.QC_COLUMNS
    assert list(qc_table["patient_id"]) == ["C1-0000", "C1-0001"]
    assert (qc_table["reference"] == "synthetic_truth").all()
    assert (qc_table["dice"] >= 0.95).all()
    assert (qc_table["asd_mm"] < 4.0).all()
    assert table["volume_outlier"].eq(0).all()
    for pid in qc_table["patient_id"]:
        mask = sitk.ReadImage(os.path.join(outputs["masks"], f"{pid}.nii.gz"))
        image = sitk.ReadImage(os.path.join(inputs["images"], f"{pid}.nii.gz"))
        assert same_grid(mask, image) and mask.GetPixelID() == sitk.sitkUInt8
    with open(outputs["montage"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_segment_center_provided_copies_and_flags_volume(tmp_path):
    inputs, outputs = _center(tmp_path, n=1, with_provided=True, truth=False)
    settings = {**SETTINGS, "volume_ml_range": [2000, 3000]}  # the phantom liver is ~1.5 L
    table = segment_center("C1", "provided", inputs, outputs, settings)
    assert table.loc[0, "reference"] == "NA" and np.isnan(table.loc[0, "dice"])
    assert table.loc[0, "volume_outlier"] == 1
    copied = sitk.ReadImage(os.path.join(outputs["masks"], "C1-0000.nii.gz"))
    given = sitk.ReadImage(os.path.join(inputs["provided"], "C1-0000.nii.gz"))
    assert np.array_equal(arr(copied), arr(given))


def test_segment_center_provided_missing_mask_names_patient(tmp_path):
    inputs, outputs = _center(tmp_path, n=1, truth=False)
    with pytest.raises(InputError, match="patient C1-0000.*liver mask is missing"):
        segment_center("C1", "provided", inputs, outputs, SETTINGS)


def test_segment_center_with_patients_side_by_side_names_the_failing_patient(tmp_path):
    inputs, outputs = _center(tmp_path, n=3, with_provided=True, truth=False)
    os.remove(os.path.join(inputs["provided"], "C1-0001.nii.gz"))
    with pytest.raises(InputError, match="patient C1-0001.*liver mask is missing"):
        segment_center("C1", "provided", inputs, outputs, SETTINGS, threads=2)


@pytest.mark.parametrize("backend", ["classical", "provided"])
def test_segment_center_threads_give_the_same_files(tmp_path, backend):
    inputs, one = _center(tmp_path, n=3, with_provided=True)
    two = {k: v.replace(os.sep + "liver" + os.sep, os.sep + "liver2" + os.sep) for k, v in one.items()}
    segment_center("C1", backend, inputs, one, SETTINGS, threads=1)
    segment_center("C1", backend, inputs, two, SETTINGS, threads=2)
    files = sorted(p.relative_to(tmp_path / "liver") for p in (tmp_path / "liver").rglob("*")
                   if p.is_file())
    assert len(files) == 3 + 2  # the masks, qc.tsv, montage.png
    for rel in files:
        assert (tmp_path / "liver" / rel).read_bytes() == (tmp_path / "liver2" / rel).read_bytes(), rel


def test_synthetic_reference_on_the_scanner_grid_is_resampled(tmp_path):
    """The generator's masks keep the scanner's grid: resampled (nearest) for the QC Dice."""
    inputs, outputs = _center(tmp_path, n=1)
    truth = os.path.join(inputs["truth"], "liver_masks", "C1-0000.nii.gz")
    image = sitk.ReadImage(os.path.join(inputs["images"], "C1-0000.nii.gz"))
    given = sitk.ReadImage(truth)
    coarse = sitk.Resample(given, [s // 2 for s in given.GetSize()], sitk.Transform(),
                           sitk.sitkNearestNeighbor, given.GetOrigin(),
                           [2 * s for s in given.GetSpacing()], given.GetDirection(), 0,
                           sitk.sitkUInt8)
    sitk.WriteImage(coarse, truth)
    assert coarse.GetSize() != image.GetSize()
    table = segment_center("C1", "classical", inputs, outputs, SETTINGS)
    assert table.loc[0, "reference"] == "synthetic_truth" and table.loc[0, "dice"] > 0.5


def test_reference_outside_the_image_names_patient(tmp_path):
    inputs, outputs = _center(tmp_path, n=1)
    truth = os.path.join(inputs["truth"], "liver_masks", "C1-0000.nii.gz")
    given = sitk.ReadImage(truth)
    given.SetOrigin([o + 5000.0 for o in given.GetOrigin()])
    sitk.WriteImage(given, truth)
    with pytest.raises(InputError, match="patient C1-0000.*does not overlap"):
        segment_center("C1", "classical", inputs, outputs, SETTINGS)


def test_unet_backend_without_model_is_a_clear_error(tmp_path):
    inputs, outputs = _center(tmp_path, n=1, truth=False)
    with pytest.raises(InputError, match="needs a trained model"):
        segment_center("C1", "unet", inputs, outputs, SETTINGS)


# ------------------------------------------------------------------ totalsegmentator


def test_totalsegmentator_without_weights_dir_setting(tmp_path):
    inputs, outputs = _center(tmp_path, n=1, truth=False)
    with pytest.raises(InputError, match="weights_dir is not set"):
        segment_center("C1", "totalsegmentator", inputs, outputs, SETTINGS)
    assert not os.path.exists(outputs["qc"])


def test_totalsegmentator_with_absent_weights_folder(tmp_path):
    settings = {**SETTINGS, "totalsegmentator": {"weights_dir": str(tmp_path / "nowhere")}}
    with pytest.raises(InputError, match="nowhere: TotalSegmentator weights folder is absent or empty"):
        totalseg.check_available(settings, center="C1")
    (tmp_path / "empty").mkdir()
    settings["totalsegmentator"]["weights_dir"] = str(tmp_path / "empty")
    with pytest.raises(InputError, match="absent or empty"):
        totalseg.check_available(settings, center="C1")
    (tmp_path / "empty" / "Dataset999_other").mkdir()
    with pytest.raises(InputError, match="lacks the model holding the liver"):
        totalseg.check_available(settings, center="C1")


def test_totalsegmentator_program_absent(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    (weights / "Dataset291_TotalSegmentator_part1_organs_1559subj").mkdir(parents=True)
    monkeypatch.setenv("PATH", str(tmp_path / "bin-empty"))
    settings = {**SETTINGS, "totalsegmentator": {"weights_dir": str(weights)}}
    with pytest.raises(InputError, match="'TotalSegmentator' is not installed"):
        totalseg.check_available(settings, center="C1")


def test_totalsegmentator_runs_the_cli_with_local_weights_and_no_stats(tmp_path, monkeypatch):
    """A stand-in executable records its arguments and environment and writes liver.nii.gz
    from a threshold, as the real CLI writes its liver class: the backend's plumbing."""
    weights = tmp_path / "weights"
    (weights / "Dataset291_TotalSegmentator_part1_organs_1559subj").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record.txt"
    exe = bin_dir / "TotalSegmentator"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "import SimpleITK as sitk\n"
        "args = sys.argv[1:]\n"
        "src, out = args[args.index('-i') + 1], args[args.index('-o') + 1]\n"
        "stats = json.load(open(os.path.join(os.environ['TOTALSEG_HOME_DIR'], 'config.json')))\n"
        f"open({str(record)!r}, 'w').write(' '.join(args) + '\\n' + "
        "os.environ['TOTALSEG_WEIGHTS_PATH'] + '\\n' + str(stats['send_usage_stats']))\n"
        "os.makedirs(out, exist_ok=True)\n"
        "img = sitk.ReadImage(src)\n"
        "sitk.WriteImage(sitk.Cast((img > 90) & (img < 130), sitk.sitkUInt8), os.path.join(out, 'liver.nii.gz'))\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    inputs, outputs = _center(tmp_path, n=1)
    settings = {**SETTINGS, "totalsegmentator": {"weights_dir": str(weights)}}
    table = segment_center("C1", "totalsegmentator", inputs, outputs, settings)
    args, weights_seen, stats = record.read_text().splitlines()
    assert "--roi_subset liver" in args
    assert weights_seen == str(weights) and stats == "False"
    assert table.loc[0, "backend"] == "totalsegmentator" and table.loc[0, "dice"] > 0.5
