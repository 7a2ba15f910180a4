"""The features stage: parameters validation, target lesion, per-patient NA, pyradiomics CLI
equality, determinism across worker processes, the sidecar, the wide table."""

from __future__ import annotations

import hashlib
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from conftest import VENV_BIN
from mtnet.errors import InputError
from conftest import REPO
from mtnet.features import (ID_COLUMNS, extract_center, make_extractor,
                            read_features, target_lesion, validate_params, wide_features)
from mtnet.tumor import measure

SPACING = 1.5  # mm, isotropic like the ingest grid
SHAPE = (36, 44, 44)  # z, y, x
# a lean parameters file for the tests that are not about the default one
LEAN = """
imageType: {Original: {}}
featureClass:
  shape:
  firstorder:
  glcm: [Contrast, JointAverage, Idm]
setting: {binWidth: 25, resampledPixelSpacing: [2.0, 2.0, 2.0], interpolator: sitkLinear,
          additionalInfo: false, label: 1}
"""

DEFAULT_PARAMS = REPO / "config" / "radiomics.yaml"


def _ball(centre_zyx, radii_zyx):
    zz, yy, xx = np.indices(SHAPE).astype(float)
    (cz, cy, cx), (rz, ry, rx) = centre_zyx, radii_zyx
    return ((zz - cz) / rz) ** 2 + ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _image(arr, dtype=np.int16):
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr).astype(dtype))
    img.SetSpacing((SPACING,) * 3)
    img.SetOrigin((-30.0, 12.5, -40.0))
    return img


def patient(seed: int, lesions, hetero_hu: float = 15.0):
    """(CT, tumor mask, ring mask) arrays: liver at 110 HU, lesions at 70 HU with a mosaic."""
    rng = np.random.default_rng(seed)
    liver = _ball((18, 22, 22), (17, 21, 21))
    tumor = np.zeros(SHAPE, bool)
    for centre, radii in lesions:
        tumor |= _ball(centre, radii)
    hu = np.full(SHAPE, -80.0)
    hu[liver] = 110.0
    mosaic = np.kron(rng.normal(size=(SHAPE[0] // 4 + 1, SHAPE[1] // 4 + 1, SHAPE[2] // 4 + 1)),
                     np.ones((4, 4, 4)))[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    hu[tumor] = 70.0 + hetero_hu * mosaic[tumor]
    hu += rng.normal(0.0, 8.0, SHAPE)
    ring = measure.peritumoral_ring(tumor, liver | tumor, 5.0, (SPACING,) * 3)
    return hu, tumor, ring


def write_center(root, patients: dict, lesions_tsv=True):
    """images/, tumor/, rings/ (and lesions.tsv) like the ingest and tumor stages write them."""
    dirs = {k: root / k for k in ("images", "tumor", "rings")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    rows = []
    for pid, (hu, tumor, ring) in patients.items():
        sitk.WriteImage(_image(hu), str(dirs["images"] / f"{pid}.nii.gz"))
        sitk.WriteImage(_image(tumor, np.uint8), str(dirs["tumor"] / f"{pid}.nii.gz"))
        sitk.WriteImage(_image(ring, np.uint8), str(dirs["rings"] / f"{pid}.nii.gz"))
        rows.append({"patient_id": pid, "n_lesions": measure.label_lesions(tumor)[1],
                     "target_lesion_rule": "longest_axial_diameter"})
    if lesions_tsv:
        pd.DataFrame(rows).to_csv(root / "lesions.tsv", sep="\t", index=False)
    return dirs


def run(root, dirs, params, threads=1, lesions=True):
    return extract_center("C1", dirs["images"], dirs["tumor"], dirs["rings"],
                          root / "lesions.tsv" if lesions else None, params,
                          root / "out" / "radiomics.tsv", root / "out" / "radiomics.json",
                          threads=threads)


@pytest.fixture
def lean(tmp_path):
    path = tmp_path / "lean.yaml"
    path.write_text(LEAN)
    return path


ONE_LESION = [((18, 22, 20), (6, 7, 8))]
TWO_LESIONS = [((18, 14, 14), (4, 3, 10)), ((20, 30, 30), (7, 6, 6))]  # long & flat, round & big


# ------------------------------------------------------------------ parameters


def test_default_params_file_is_valid_and_documented():
    params = validate_params(DEFAULT_PARAMS)
    assert set(params["imageType"]) == {"Original", "LoG", "Wavelet"}
    assert params["imageType"]["LoG"]["sigma"] == [2.0, 4.0]
    assert set(params["featureClass"]) == {"shape", "firstorder", "glcm", "glrlm", "glszm",
                                           "gldm", "ngtdm"}
    assert "SumAverage" not in params["featureClass"]["glcm"]
    assert params["setting"]["binWidth"] == 25
    assert params["setting"]["resampledPixelSpacing"] == [2.0, 2.0, 2.0]
    assert "shape" not in make_extractor(DEFAULT_PARAMS, "ring").enabledFeatures


def test_the_tiny_params_differ_from_the_default_in_the_image_types_only():
    # config/tiny.yaml's cheaper set for the tests: the same features of the original image
    tiny = validate_params(REPO / "config" / "radiomics_tiny.yaml")
    default = validate_params(DEFAULT_PARAMS)
    assert set(tiny["imageType"]) == {"Original"}
    assert {k: v for k, v in tiny.items() if k != "imageType"} == \
        {k: v for k, v in default.items() if k != "imageType"}
    assert yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())["features"]["params"] \
        == "config/radiomics_tiny.yaml"


@pytest.mark.parametrize(
    "text,message",
    [
        ("setting:\n  binWidth: -5\n", "binWidth"),
        ("setting:\n  binwidth: 25\n", "Key 'binwidth' was not defined"),
        ("featureClass:\n  glcmm:\n", "Feature Class glcmm is not recognized"),
        ("imageType:\n  LoGG: {}\n", "Image Type LoGG is not recognized"),
        ("imageType: [\n", "invalid radiomics parameters"),
        ("setting:\n  label: 2\n", "label is 2"),
        ("setting:\n  resampledPixelSpacing: [2.0, 2.0]\n", "three positive spacings"),
    ],
)
def test_bad_params_file_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        validate_params(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    # the center fails on the file before any patient is read
    with pytest.raises(InputError, match=message):
        extract_center("C1", tmp_path / "none", tmp_path / "none", tmp_path / "none",
                       None, path, None, None)


def test_missing_params_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="parameters file not found"):
        validate_params(tmp_path / "absent.yaml")


# ------------------------------------------------------------------ extraction


def test_target_lesion_is_the_longest_axial_one(tmp_path, lean):
    hu, tumor, ring = patient(0, TWO_LESIONS)
    target, n = target_lesion(tumor, (SPACING,) * 3)
    assert n == 2
    long_flat = _ball(*TWO_LESIONS[0])
    assert (target == long_flat).all()  # 30 mm long in-plane, though the other is bigger
    assert _ball(*TWO_LESIONS[1]).sum() > long_flat.sum()
    dirs = write_center(tmp_path, {"C1-0001": (hu, tumor, ring)})
    table = run(tmp_path, dirs, lean)
    lesion = table[table["region"] == "lesion"].iloc[0]
    direct = make_extractor(lean).execute(_image(hu), _image(target, np.uint8))
    assert lesion["original_shape_VoxelVolume"] == pytest.approx(
        float(direct["original_shape_VoxelVolume"]), rel=1e-12)
    whole = make_extractor(lean).execute(_image(hu), _image(tumor, np.uint8))
    assert lesion["original_shape_VoxelVolume"] < 0.8 * float(whole["original_shape_VoxelVolume"])


def _cli(image, mask, params, out):
    proc = subprocess.run([str(VENV_BIN / "pyradiomics"), str(image), str(mask), "--param",
                           str(params), "-o", str(out), "-f", "csv"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return pd.read_csv(out).iloc[0]


def test_features_equal_the_pyradiomics_command_line(tmp_path):
    """The acceptance check: same image, mask and parameters file -> the same numbers."""
    hu, tumor, ring = patient(1, TWO_LESIONS)
    dirs = write_center(tmp_path, {"C1-0001": (hu, tumor, ring)})
    table = run(tmp_path, dirs, DEFAULT_PARAMS)
    assert (table["reason"] == "").all()
    target, _ = target_lesion(tumor, (SPACING,) * 3)
    sitk.WriteImage(_image(target, np.uint8), str(tmp_path / "target.nii.gz"))
    # the ring's parameters: the same file without the shape class
    ring_params = yaml.safe_load(DEFAULT_PARAMS.read_text())
    del ring_params["featureClass"]["shape"]
    (tmp_path / "ring.yaml").write_text(yaml.safe_dump(ring_params))
    image = dirs["images"] / "C1-0001.nii.gz"
    for region, mask, params in (("lesion", tmp_path / "target.nii.gz", DEFAULT_PARAMS),
                                 ("ring", dirs["rings"] / "C1-0001.nii.gz", tmp_path / "ring.yaml")):
        cli = _cli(image, mask, params, tmp_path / f"{region}.csv")
        ours = table[table["region"] == region].iloc[0]
        names = [c for c in cli.index if c.startswith(("original_", "log-", "wavelet-"))]
        expected = 1026 if region == "lesion" else 1012
        assert len(names) == expected
        assert ours[names].notna().all()
        np.testing.assert_allclose(ours[names].to_numpy(float), cli[names].to_numpy(float),
                                   rtol=1e-6, atol=0, err_msg=region)


def test_a_lesion_too_small_gives_na_and_the_reason_not_a_crash(tmp_path, lean):
    good = patient(2, ONE_LESION)
    hu, _, _ = patient(3, ONE_LESION)
    dot = np.zeros(SHAPE, bool)
    dot[18, 22, 22] = True  # one voxel: no texture, no shape
    ring = measure.peritumoral_ring(dot, _ball((18, 22, 22), (17, 21, 21)), 5.0, (SPACING,) * 3)
    dirs = write_center(tmp_path, {"C1-0001": good, "C1-0002": (hu, dot, ring)})
    table = run(tmp_path, dirs, lean)
    assert list(table["patient_id"]) == ["C1-0001"] * 2 + ["C1-0002"] * 2
    assert list(table["region"]) == ["lesion", "ring"] * 2
    features = [c for c in table.columns if c not in ID_COLUMNS]
    small = table.iloc[2]
    assert small[features].isna().all()
    assert small["reason"].startswith("ValueError") and "voxel" in small["reason"]
    assert table.iloc[0][features].notna().all() and table.iloc[0]["reason"] == ""
    assert table.iloc[3]["reason"] == "" and table.iloc[3][
        [c for c in features if "_shape_" not in c]].notna().all()
    # NA survives the round trip through the TSV
    back = read_features(tmp_path / "out" / "radiomics.tsv")
    assert back.iloc[2][features].isna().all() and back.iloc[2]["reason"] == small["reason"]


def test_worker_processes_give_the_same_table_and_the_sidecar(tmp_path, lean):
    patients = {f"C1-{i:04d}": patient(10 + i, ONE_LESION, hetero_hu=10.0 * i) for i in range(3)}
    dirs = write_center(tmp_path, patients)
    one = run(tmp_path, dirs, lean, threads=1)
    text = (tmp_path / "out" / "radiomics.tsv").read_bytes()
    two = run(tmp_path, dirs, lean, threads=2)
    assert (tmp_path / "out" / "radiomics.tsv").read_bytes() == text
    pd.testing.assert_frame_equal(one, two)
    assert list(one.columns[:3]) == ID_COLUMNS
    # the mosaic's amplitude shows in the lesion's intensity spread
    spread = one[one["region"] == "lesion"]["original_firstorder_RobustMeanAbsoluteDeviation"]
    assert spread.is_monotonic_increasing
    side = json.loads((tmp_path / "out" / "radiomics.json").read_text())
    import radiomics

    assert side["pyradiomics_version"] == radiomics.__version__
    assert side["params_sha256"] == hashlib.sha256(lean.read_bytes()).hexdigest()
    assert side["n_patients"] == 3
    assert side["regions"]["lesion"]["rows_failed"] == 0
    assert side["regions"]["ring"]["features"] == side["regions"]["lesion"]["features"] - 14


def test_the_rule_of_lesions_tsv_is_followed_and_longest_axial_by_default(tmp_path, lean):
    dirs = write_center(tmp_path, {"C1-0001": patient(4, TWO_LESIONS)})
    with_table = run(tmp_path, dirs, lean)
    without = run(tmp_path, dirs, lean, lesions=False)
    pd.testing.assert_frame_equal(with_table, without)
    lesions = pd.read_csv(tmp_path / "lesions.tsv", sep="\t")
    lesions["target_lesion_rule"] = "largest_volume"
    lesions.to_csv(tmp_path / "lesions.tsv", sep="\t", index=False)
    by_volume = run(tmp_path, dirs, lean)
    volume = "original_shape_VoxelVolume"
    assert by_volume.loc[0, volume] > 1.5 * with_table.loc[0, volume]  # the round, bigger one


def test_bad_inputs_name_the_patient(tmp_path, lean):
    dirs = write_center(tmp_path, {"C1-0001": patient(5, TWO_LESIONS)})
    lesions = pd.read_csv(tmp_path / "lesions.tsv", sep="\t")
    lesions["target_lesion_rule"] = "biggest"
    lesions.to_csv(tmp_path / "lesions.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="patient C1-0001.*unknown target lesion rule 'biggest'"):
        run(tmp_path, dirs, lean)
    lesions["target_lesion_rule"] = "largest_volume"
    lesions["n_lesions"] = 1
    lesions.to_csv(tmp_path / "lesions.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="patient C1-0001.*2 lesion.*lesions.tsv says 1"):
        run(tmp_path, dirs, lean)
    (dirs["rings"] / "C1-0001.nii.gz").unlink()
    with pytest.raises(InputError, match="patient C1-0001.*ring mask is missing"):
        run(tmp_path, dirs, lean, lesions=False)
    with pytest.raises(InputError, match="no ingested images"):
        extract_center("C2", tmp_path / "empty", dirs["tumor"], dirs["rings"], None, lean)


def test_wide_table_has_one_row_per_patient(tmp_path, lean):
    dirs = write_center(tmp_path, {f"C1-{i:04d}": patient(20 + i, ONE_LESION) for i in range(2)})
    long = run(tmp_path, dirs, lean)
    wide = wide_features({"C1": long, "C2": tmp_path / "out" / "radiomics.tsv"})
    assert list(wide.columns[:2]) == ["patient_id", "center"]
    assert len(wide) == 4 and list(wide["center"]) == ["C1", "C1", "C2", "C2"]
    assert "lesion_original_shape_VoxelVolume" in wide.columns
    assert "ring_original_shape_VoxelVolume" not in wide.columns  # never extracted: left out
    ring = long[(long["region"] == "ring") & (long["patient_id"] == "C1-0001")].iloc[0]
    row = wide[(wide["center"] == "C2") & (wide["patient_id"] == "C1-0001")].iloc[0]
    assert row["ring_original_glcm_Contrast"] == ring["original_glcm_Contrast"]
