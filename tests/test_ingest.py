"""Ingestion (mtnet.io) on small DICOM / NIfTI / DICOM-SEG fixtures written with pydicom."""

from __future__ import annotations

import gzip
import hashlib
import logging
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
import yaml
from conftest import VENV_BIN, workflow_env
from ingest_fixtures import (
    CLINICAL_ROW,
    PHI,
    make_center,
    outputs_for,
    phantom,
    settings,
    slice_dataset,
    write_nifti,
    write_seg,
    write_series,
)
from pydicom.uid import generate_uid

from mtnet.errors import InputError
from mtnet import imaging
from mtnet.factors import CANONICAL_COLUMNS
from mtnet.io import clinical, dicom, ingest_center

SPACING = (1.0, 1.0, 2.5)
ORIGIN = (-16.0, -16.0, -100.0)


def run(root: Path, center: str, data: Path, **ingest):
    out = outputs_for(root, center)
    ingest_center(center, {"data": str(data)}, out, settings(**ingest), threads=1)
    return out


def load(path) -> tuple[sitk.Image, np.ndarray]:
    img = sitk.ReadImage(str(path))
    return img, sitk.GetArrayFromImage(img)


def series_of(folder: Path) -> dicom.Series:
    scan = dicom.scan_folder(folder)
    assert len(scan.series) == 1, scan.series
    return next(iter(scan.series.values()))


def set_entry(data: Path, **changes) -> None:
    entry = yaml.safe_load((data / "center.yaml").read_text())
    entry.update(changes)
    (data / "center.yaml").write_text(yaml.safe_dump(entry))


# ------------------------------------------------------------------ the contract


def test_dicom_center_follows_the_contract(tmp_path):
    data = make_center(tmp_path, "AA", n=2, extra_series=True)
    out = run(tmp_path, "AA", data, spacing=(2.0, 2.0, 2.0))
    for pid in ("AA-0001", "AA-0002"):
        img, arr = load(Path(out["images"]) / f"{pid}.nii.gz")
        mask, marr = load(Path(out["tumor"]) / f"{pid}.nii.gz")
        assert img.GetPixelID() == sitk.sitkInt16 and mask.GetPixelID() == sitk.sitkUInt8
        assert img.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)
        # 1 mm pixels to 2 mm; the 2.5 mm slices are not upsampled
        assert np.allclose(img.GetSpacing(), (2, 2, 2.5))
        assert (img.GetSize(), img.GetOrigin()) == (mask.GetSize(), mask.GetOrigin())
        assert img.GetSize() == (16, 16, 10)  # floor(31 / 2) + 1, the 10 slices
        assert arr.min() == -1024  # padding (-2000 stored, HU -3024) became air
        assert set(np.unique(marr)) == {0, 1}
        assert abs(np.median(arr[marr > 0]) - 90) < 15  # tumor at 90 HU
        body = arr[arr > -500]
        assert abs(np.median(body) - 40) < 10
    qc = pd.read_csv(out["qc"], sep="\t")
    assert list(qc.series_number) == [3, 3]
    assert qc.pick_reason.str.contains("portal").all()
    assert list(qc.shape_before) == ["32x32x10", "32x32x10"]
    table = pd.read_csv(out["clinical"], sep="\t", dtype=str, keep_default_na=False)
    assert list(table.columns[: len(CANONICAL_COLUMNS) + 1]) == CANONICAL_COLUMNS + ["center"]
    assert list(table.patient_id) == ["AA-0001", "AA-0002"]
    assert table.afp_group.tolist() == ["25-400"] * 2
    missing = pd.read_csv(Path(out["clinical"]).parent / "missing_columns.tsv", sep="\t")
    assert missing.empty
    assert Path(out["montage"]).stat().st_size > 1000
    assert list(Path(out["liver"]).iterdir()) == []


def test_coarse_axes_keep_the_scanner_spacing_unless_upsampled(tmp_path):
    """The 2.5 mm slices stay the delivered slices, voxel for voxel (no interpolation: the
    grids coincide); ``upsample`` resamples them to the configured spacing instead."""
    data = make_center(tmp_path, "AA", n=1)
    kept = run(tmp_path / "kept", "AA", data, spacing=(1.0, 1.0, 1.5))
    up = run(tmp_path / "up", "AA", data, spacing=(1.0, 1.0, 1.5), upsample=True)
    img, arr = load(Path(kept["images"]) / "AA-0001.nii.gz")
    assert np.allclose(img.GetSpacing(), (1.0, 1.0, 2.5)) and img.GetSize() == (32, 32, 10)
    delivered = dicom.load_series(series_of(data / "images" / "AA-0001"), "error").image
    ref = imaging.reorient(delivered)
    expected = np.clip(np.rint(sitk.GetArrayFromImage(ref)), -1024, None)
    assert np.array_equal(arr, expected)
    upimg, _ = load(Path(up["images"]) / "AA-0001.nii.gz")
    assert np.allclose(upimg.GetSpacing(), (1.0, 1.0, 1.5)) and upimg.GetSize() == (32, 32, 16)
    qc = pd.read_csv(kept["qc"], sep="\t")
    assert qc.spacing_mm.tolist() == ["1,1,2.5"]


def test_native_spacing_follows_the_direction_cosines():
    image = sitk.Image([10, 20, 30], sitk.sitkInt16)
    image.SetSpacing((0.8, 0.7, 5.0))
    assert imaging.native_spacing(image) == (0.8, 0.7, 5.0)
    image.SetDirection((0, 0, 1, 1, 0, 0, 0, -1, 0))  # x <- k, y <- i, z <- -j
    assert imaging.native_spacing(image) == (5.0, 0.8, 0.7)
    assert imaging.kept_spacing(image, (1.5, 1.5, 1.5)) == (5.0, 1.5, 1.5)
    assert imaging.kept_spacing(image, (1.5, 1.5, 1.5), upsample=True) == (1.5, 1.5, 1.5)


def test_nifti_center_with_liver_masks(tmp_path):
    data = make_center(tmp_path, "NN", n=2, image_format="nifti", liver=True)
    out = run(tmp_path, "NN", data, spacing=(1.0, 1.0, 2.5))
    img, arr = load(Path(out["images"]) / "NN-0001.nii.gz")
    hu, tumor, fov = phantom()
    expected = np.where(fov[None], hu, -1024)
    assert np.array_equal(arr, expected)  # same grid: values unchanged, padding -> -1024
    liver, larr = load(Path(out["liver"]) / "NN-0001.nii.gz")
    assert np.array_equal(larr, (expected > 0).astype(np.uint8))
    _, tarr = load(Path(out["tumor"]) / "NN-0001.nii.gz")
    assert np.array_equal(tarr, tumor)


@pytest.mark.parametrize("syntax", ["jpeg2000", "jpegls", "rle"])
def test_compressed_series_load_like_uncompressed(tmp_path, syntax):
    hu, _, fov = phantom((3, 64, 64))  # JPEG 2000 needs tiles of at least 2^5
    write_series(tmp_path / "plain", hu, fov)
    write_series(tmp_path / syntax, hu, fov, transfer=syntax)
    plain = dicom.load_series(series_of(tmp_path / "plain"))
    packed = dicom.load_series(series_of(tmp_path / syntax))
    ts = pydicom.dcmread(next((tmp_path / syntax).iterdir())).file_meta.TransferSyntaxUID
    assert ts.is_compressed
    assert np.array_equal(sitk.GetArrayFromImage(plain.image), sitk.GetArrayFromImage(packed.image))
    assert np.array_equal(sitk.GetArrayFromImage(plain.image), np.where(fov[None], hu, -1024))


def test_coronal_series_lands_on_the_identity_lps_grid(tmp_path):
    """Coronal slices (rows run inferior, normal posterior) give the same LPS volume as axial ones."""
    hu, _, fov = phantom((8, 16, 12), spacing_xyz=(1.0, 1.5, 2.0))
    ref = np.where(fov[None], hu, -1024)  # (z, y, x)
    nz = ref.shape[0]
    study, uid = generate_uid(), generate_uid()
    folder = tmp_path / "coronal"
    folder.mkdir()
    full = np.ones(ref.shape[::2], bool)
    for k in range(ref.shape[1]):  # one coronal slice per y
        plane = ref[::-1, k, :]  # rows: superior -> inferior, columns: x
        ds = slice_dataset(plane, full, position=(-5.0, -10.0 + 1.5 * k, 30.0 + 2.0 * (nz - 1)),
                           orientation=(1, 0, 0, 0, 0, -1), spacing_xy=(1.0, 2.0), series_uid=uid,
                           study_uid=study, instance=k + 1)
        ds.save_as(folder / f"C{k:02d}", enforce_file_format=True)
    loaded = dicom.load_series(series_of(folder))
    assert loaded.image.GetDirection() == (1, 0, 0, 0, 0, 1, 0, -1, 0)
    grid = imaging.covering_grid(loaded.image, (1.0, 1.5, 2.0))
    out = imaging.resample_hu(loaded.image, grid)
    assert grid.origin == (-5.0, -10.0, 30.0)
    assert np.array_equal(sitk.GetArrayFromImage(out), ref)


def test_rescale_slope_intercept_and_padding_without_tag(tmp_path):
    hu, _, fov = phantom((3, 16, 16))
    hu = (hu // 2) * 2  # representable with slope 2
    folder = tmp_path / "s"
    ds = write_series(folder, hu, fov, slope=2.0, intercept=-1000.0)
    loaded = dicom.load_series(series_of(folder))
    assert np.array_equal(sitk.GetArrayFromImage(loaded.image), np.where(fov[None], hu, -1024))
    # the same padding written without PixelPaddingValue: below -1024 HU is air too
    for f in folder.iterdir():
        d = pydicom.dcmread(f)
        del d.PixelPaddingValue
        d.save_as(f)
    assert sitk.GetArrayFromImage(dicom.load_series(series_of(folder)).image).min() == -1024
    assert ds[0].RescaleSlope == 2.0


def test_padding_value_inside_the_hu_range_and_padding_range():
    hu, _, fov = phantom((1, 16, 16))
    ds = slice_dataset(hu[0], fov, position=(0, 0, 0), series_uid=generate_uid(),
                       study_uid=generate_uid(), intercept=0.0)
    stored = ds.pixel_array.copy()
    stored[~fov] = -1000  # padding that would pass for air-ish tissue
    ds.PixelData = stored.tobytes()
    ds.PixelPaddingValue = -1000
    out = dicom._hu(ds)
    expected = np.where(stored == -1000, -1024, np.maximum(hu[0], -1024))  # tag value = padding
    assert (out[~fov] == -1024).all() and np.array_equal(out, expected)
    stored[~fov] = np.where(np.arange((~fov).sum()) % 2, -1000, -990)
    ds.PixelData = stored.tobytes()
    ds.PixelPaddingRangeLimit = -990
    assert (dicom._hu(ds)[~fov] == -1024).all()
    assert dicom._as_stored(63536, stored) == -2000


def test_dicom_seg_masks_and_configured_segment(tmp_path):
    data = make_center(tmp_path, "SG", n=1, mask_format="dicom-seg")
    out = run(tmp_path, "SG", data, spacing=(1.0, 1.0, 2.5))
    _, tarr = load(Path(out["tumor"]) / "SG-0001.nii.gz")
    _, tumor, _ = phantom()
    assert np.array_equal(tarr, tumor)

    # two segments: the configured tumor_segment (2) is the one taken
    folder = data / "images" / "SG-0001"
    source = [pydicom.dcmread(f) for f in sorted(folder.iterdir())]
    source.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    other = np.zeros_like(tumor)
    other[2:4, 3:6, 3:6] = 1
    write_seg(data / "tumor_masks" / "SG-0001.dcm", source, other, segments=("vessel", "tumor"),
              extra_masks=[tumor])
    set_entry(data, tumor_segment=2)
    out = run(tmp_path, "SG2", data, spacing=(1.0, 1.0, 2.5))
    _, tarr = load(Path(out["tumor"]) / "SG-0001.nii.gz")
    assert np.array_equal(tarr, tumor)
    set_entry(data, tumor_segment=3)
    with pytest.raises(InputError, match=r"segment 3 not in the SEG \(segments: 1 'vessel', 2 'tumor'\)"):
        run(tmp_path, "SG3", data)


def test_seg_of_another_series_is_refused(tmp_path):
    data = make_center(tmp_path, "SX", n=1, mask_format="dicom-seg")
    hu, tumor, fov = phantom()
    other = write_series(tmp_path / "elsewhere", hu, fov)
    write_seg(data / "tumor_masks" / "SX-0001.dcm", other, tumor)
    with pytest.raises(InputError, match="SEG references another series than the one picked"):
        run(tmp_path, "SX", data)


def test_center_yaml_problems_name_the_key(tmp_path):
    data = make_center(tmp_path, "CY", n=1, image_format="nifti")
    set_entry(data, image_format="png")
    with pytest.raises(InputError, match=r"center CY, .*center.yaml: image_format: 'png' is not one of"):
        run(tmp_path, "CY", data)
    set_entry(data, image_format="nifti", tumor_masks="nowhere")
    with pytest.raises(InputError, match=r"center CY, .*center.yaml: tumor_masks: path does not exist"):
        run(tmp_path, "CY", data)
    (data / "center.yaml").unlink()
    with pytest.raises(InputError, match="no center.yaml in the data folder"):
        run(tmp_path, "CY", data)


# ------------------------------------------------------------------ phase pick


def two_series(tmp_path, desc_a="ABD ARTERIAL", desc_b="ABD LATE"):
    hu, _, fov = phantom((3, 16, 16))
    study = generate_uid()
    a = write_series(tmp_path / "p", hu, fov, series_number=2, description=desc_a, study_uid=study)
    b = write_series(tmp_path / "p", hu, fov, series_number=5, description=desc_b, study_uid=study)
    return dicom.scan_folder(tmp_path / "p"), a, b


def test_phase_pick_rules_and_reasons(tmp_path):
    scan, a, b = two_series(tmp_path)
    with pytest.raises(InputError, match=r"2 image series and no rule picks one \(found: series 2 "
                                         r"'ABD ARTERIAL' \(3 files\); series 5 'ABD LATE'"):
        dicom.pick_series(scan, {}, center="C", patient="P")
    s, why = dicom.pick_series(scan, {"series_number": 5})
    assert (s.number, why) == (5, "phase.series_number = 5")
    s, why = dicom.pick_series(scan, {"series_description": "late"})
    assert s.number == 5 and "late" in why
    s, why = dicom.pick_series(scan, {"series_number": 5}, override_uid=a[0].SeriesInstanceUID)
    assert s.number == 2 and why.startswith("per-patient override")
    with pytest.raises(InputError, match="no series match phase.series_number 7"):
        dicom.pick_series(scan, {"series_number": 7})


def test_phase_override_tsv_in_center(tmp_path):
    data = make_center(tmp_path, "OV", n=1, extra_series=True)
    folder = data / "images" / "OV-0001"
    arterial = [s for s in dicom.scan_folder(folder).series.values() if s.number == 2][0]
    (data / "overrides.tsv").write_text(f"patient_id\tseries_instance_uid\nOV-0001\t{arterial.uid}\n")
    set_entry(data, phase={"overrides": "overrides.tsv"})
    out = run(tmp_path, "OV", data)
    qc = pd.read_csv(out["qc"], sep="\t")
    assert qc.series_number.tolist() == [2]
    assert qc.pick_reason.tolist() == ["per-patient override (series 2)"]


def test_non_image_objects_are_set_aside(tmp_path):
    data = make_center(tmp_path, "MX", n=1, extra_series=True, mask_format="dicom-seg")
    folder = data / "images" / "MX-0001"
    (folder / "SEG.dcm").write_bytes((data / "tumor_masks" / "MX-0001.dcm").read_bytes())
    (folder / "notes.txt").write_text("not dicom")
    hu, _, fov = phantom((1, 32, 32))
    loc = slice_dataset(hu[0], fov, position=(-16, -100, 50), orientation=(1, 0, 0, 0, 0, -1),
                        series_uid=generate_uid(), study_uid=generate_uid(), series_number=1,
                        description="Topogram", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    loc.save_as(folder / "LOC1", enforce_file_format=True)
    scan = dicom.scan_folder(folder)
    assert sorted(s.number for s in scan.series.values()) == [2, 3]
    skipped = "\n".join(scan.skipped)
    assert "SEG.dcm: non-image object" in skipped and "SR0001: non-image object" in skipped
    assert "LOC1: localizer" in skipped and "notes.txt: not DICOM" in skipped
    out = run(tmp_path, "MX", data)
    assert pd.read_csv(out["qc"], sep="\t").series_number.tolist() == [3]


# ------------------------------------------------------------------ stray slices, spacing, tilt


def write_stack(tmp_path, n=6, **kw):
    hu, _, fov = phantom((n, 16, 16))
    folder = tmp_path / "stack"
    dsets = write_series(folder, hu, fov, names=[f"S{k:02d}" for k in range(n)], **kw)
    return folder, dsets, hu, fov


def test_stray_slice_with_other_orientation_is_dropped(tmp_path, caplog):
    folder, dsets, hu, fov = write_stack(tmp_path)
    stray = slice_dataset(hu[0], fov, position=(-16, 0, -90), orientation=(1, 0, 0, 0, 0, -1),
                          series_uid=dsets[0].SeriesInstanceUID, study_uid=dsets[0].StudyInstanceUID,
                          instance=99)
    stray.save_as(folder / "STRAY", enforce_file_format=True)
    with caplog.at_level(logging.WARNING):
        loaded = dicom.load_series(series_of(folder), center="C", patient="P")
    assert loaded.dropped == ["STRAY"] and loaded.slices == 6
    assert "dropped slice STRAY: another orientation" in caplog.text


def test_stray_slice_with_other_origin_is_dropped(tmp_path, caplog):
    folder, dsets, hu, fov = write_stack(tmp_path)
    stray = slice_dataset(hu[0], fov, position=(40, 12, -90 + 1.25), series_uid=dsets[0].SeriesInstanceUID,
                          study_uid=dsets[0].StudyInstanceUID, instance=99)
    stray.save_as(folder / "ODD", enforce_file_format=True)
    with caplog.at_level(logging.WARNING):
        loaded = dicom.load_series(series_of(folder), center="C", patient="P")
    assert loaded.dropped == ["ODD"]
    assert "dropped slice ODD: another in-plane origin" in caplog.text
    assert loaded.image.GetSize() == (16, 16, 6)


def test_missing_slice_is_an_error_or_resampled(tmp_path):
    folder, dsets, hu, fov = write_stack(tmp_path, n=7)
    (folder / "S03").unlink()
    with pytest.raises(InputError, match=r"center C, patient P, .*non-uniform slice spacing in series 3 "
                                         r".*first 5 mm after slice S02 \(missing slices\?\).*"
                                         r"nonuniform_spacing: resample"):
        dicom.load_series(series_of(folder), "error", center="C", patient="P", path=folder)
    loaded = dicom.load_series(series_of(folder), "resample")
    arr = sitk.GetArrayFromImage(loaded.image)
    assert arr.shape[0] == 7 and loaded.resampled_slices
    ref = np.where(fov[None], hu, -1024).astype(float)
    assert np.allclose(arr[3], (ref[2] + ref[4]) / 2)  # linear between neighbours
    assert np.array_equal(arr[4], ref[4])


def test_gantry_tilt_is_an_error(tmp_path):
    folder, dsets, _, _ = write_stack(tmp_path, tilt=15.0)
    with pytest.raises(InputError, match="gantry tilt of 15 degrees in series 3"):
        dicom.load_series(series_of(folder), center="C", patient="P")
    # a tilted stack without the tag: positions shear along y
    folder2 = tmp_path / "sheared"
    folder2.mkdir()
    hu, _, fov = phantom((6, 16, 16))
    uid = generate_uid()
    for k in range(6):
        ds = slice_dataset(hu[k], fov, position=(-16, -16 + 0.66 * k, -100 + 2.5 * k),
                           series_uid=uid, study_uid=dsets[0].StudyInstanceUID, instance=k)
        ds.save_as(folder2 / f"T{k}", enforce_file_format=True)
    with pytest.raises(InputError, match="shifted in-plane .*gantry tilt"):
        dicom.load_series(series_of(folder2), center="C", patient="P")


def test_nifti_mask_stored_with_flipped_axes_is_accepted(tmp_path):
    data = make_center(tmp_path, "FL", n=1, image_format="nifti")
    _, tumor, _ = phantom()
    flipped = sitk.GetImageFromArray(tumor[:, ::-1, ::-1].copy())  # RAS storage of the same grid
    flipped.SetSpacing(SPACING)
    flipped.SetOrigin((ORIGIN[0] + 31 * SPACING[0], ORIGIN[1] + 31 * SPACING[1], ORIGIN[2]))
    flipped.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    sitk.WriteImage(flipped, str(data / "tumor_masks" / "FL-0001.nii.gz"))
    out = run(tmp_path, "FL", data, spacing=SPACING)
    _, tarr = load(Path(out["tumor"]) / "FL-0001.nii.gz")
    assert np.array_equal(tarr, tumor)


def test_nifti_mask_off_the_image_grid_is_refused(tmp_path):
    data = make_center(tmp_path, "GR", n=1, image_format="nifti")
    _, tumor, _ = phantom()
    write_nifti(tumor, data / "tumor_masks" / "GR-0001.nii.gz", (1.0, 1.0, 2.0), ORIGIN)
    with pytest.raises(InputError, match=r"patient GR-0001, .*GR-0001.nii.gz: tumor mask is not on the "
                                         r"image grid \(spacing"):
        run(tmp_path, "GR", data)


# ------------------------------------------------------------------ clinical tables


def clinical_problem(tmp_path, rows, mapping=None, **ingest):
    data = make_center(tmp_path, "CL", n=2, image_format="nifti", clinical_rows=rows)
    if mapping is not None:
        (data / "map.yaml").write_text(yaml.safe_dump(mapping))
        set_entry(data, clinical_mapping="map.yaml")
    with pytest.raises(InputError) as err:
        run(tmp_path, "CL", data, **ingest)
    return str(err.value)


def rows(**changes):
    base = [dict(CLINICAL_ROW, patient_id="CL-0001"), dict(CLINICAL_ROW, patient_id="CL-0002")]
    for key, value in changes.items():
        base[1][key] = value
    return base


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sex": "X"}, "patient CL-0002, column sex: unknown code 'X' (allowed: M, F)"),
        ({"bclc": "E"}, "patient CL-0002, column bclc: unknown code 'E'"),
        ({"age": 130}, "patient CL-0002, column age: value 130 out of range (0-120)"),
        ({"max_diameter_mm": 0.5}, "column max_diameter_mm: value 0.5 out of range (1-300)"),
        ({"max_diameter_mm": 420}, "column max_diameter_mm: value 420 out of range (1-300)"),
        ({"afp_ng_ml": -3}, "column afp_ng_ml: value -3 out of range (>= 0)"),
        ({"os_days": 0}, "patient CL-0002, column os_days: non-positive event time 0 days"),
        ({"time_to_mvi_days": -5}, "column time_to_mvi_days: non-positive event time -5 days"),
        ({"time_to_mvi_days": None}, "column time_to_mvi_days: event flag mvi = 1 without a time"),
        ({"patient_id": "CL-0001"}, "patient CL-0001, column patient_id: duplicated patient ID"),
        ({"age": "old"}, "column age: not a number: 'old'"),
    ],
)
def test_clinical_problem_messages(tmp_path, change, message):
    text = clinical_problem(tmp_path, rows(**change))
    assert text.startswith("center CL, ")
    assert message in text


def test_all_problems_of_a_table_are_counted_and_logged(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        text = clinical_problem(tmp_path, rows(age=130, sex="X", os_days=-1))
    assert "(and 2 more problem(s) in the clinical table clinical.csv; all are in the log)" in text
    for part in ("column age", "column sex", "column os_days"):
        assert part in caplog.text


def test_missing_required_column_through_a_mapping(tmp_path):
    mapping = {"id_column": "patient_id", "columns": {"age": {"from": "AGE_YEARS"}}}
    text = clinical_problem(tmp_path, rows(), mapping)
    assert "center CL, column AGE_YEARS: missing required column 'AGE_YEARS' in clinical.csv" in text


@pytest.mark.parametrize("mapping, message", [
    ({"colums": {}}, "unknown key(s) colums (allowed: columns, extra, id_column, missing)"),
    ({"columns": {"age": {"from": "age", "unit": "fortnights"}}}, "column 'age': unknown unit 'fortnights'"),
    ({"columns": {"age": {"form": "age"}}}, "columns.age: unknown key(s) form"),
    ({"columns": {"stage": {"from": "x"}}}, "'stage' is not a canonical column"),
])
def test_mapping_file_problems(tmp_path, mapping, message):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(mapping))
    with pytest.raises(InputError) as err:
        clinical.map_table(pd.DataFrame({"patient_id": ["a"], "age": [50]}), mapping, "C", mapping_path=path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_mapping_units_values_and_missing_columns(tmp_path):
    src = [{"ID": "CL-0001", "Gender": 2, "OS_m": 12, "TTM_w": 10, "MVI": 1, "Dead": 0, "size_cm": 3.2},
           {"ID": "CL-0002", "Gender": 1, "OS_m": 6, "TTM_w": 4, "MVI": 0, "Dead": 1, "size_cm": 5.0}]
    src = [dict(r, ID=r["ID"].replace("CL", "MP")) for r in src]
    data = make_center(tmp_path, "MP", n=2, image_format="nifti", clinical_rows=src)
    mapping = {"id_column": "ID",
               "columns": {"sex": {"from": "Gender", "values": {1: "M", 2: "F"}},
                           "os_days": {"from": "OS_m", "unit": "months"},
                           "time_to_mvi_days": {"from": "TTM_w", "unit": "weeks"},
                           "mvi": {"from": "MVI"}, "death": {"from": "Dead"},
                           "max_diameter_mm": {"from": "size_cm", "unit": "cm"}},
               "missing": {"age": "not recorded by this hospital"}}
    (data / "map.yaml").write_text(yaml.safe_dump(mapping))
    set_entry(data, clinical_mapping="map.yaml")
    out = run(tmp_path, "MP", data)
    t = pd.read_csv(out["clinical"], sep="\t")
    assert t.sex.tolist() == ["F", "M"]
    assert np.allclose(t.os_days, [12 * 365.25 / 12, 6 * 365.25 / 12])
    assert t.time_to_mvi_days.tolist() == [70, 28]
    assert t.max_diameter_mm.tolist() == [32, 50]
    assert t.age.isna().all()
    missing = pd.read_csv(Path(out["clinical"]).parent / "missing_columns.tsv", sep="\t")
    assert missing.set_index("column").reason["age"] == "not recorded by this hospital"
    assert missing.set_index("column").reason["hbv"] == "not in the source table"


def test_unmatched_patients_error_or_excluded(tmp_path):
    table = rows() + [dict(CLINICAL_ROW, patient_id="CL-0003")]
    text = clinical_problem(tmp_path, table, unmatched="error")
    assert "center CL, patient CL-0003: in the clinical table but no image" in text
    data = tmp_path / "CL" / "data"
    write_nifti(np.zeros((4, 8, 8), np.int16), data / "images" / "CL-0009.nii.gz", SPACING, ORIGIN)
    out = run(tmp_path, "CLX", data, unmatched="exclude")
    excl = pd.read_csv(Path(out["clinical"]).parent / "exclusions.tsv", sep="\t")
    assert excl.values.tolist() == [["CL-0003", "in the clinical table but no image"],
                                    ["CL-0009", "image without a row in the clinical table"]]
    assert pd.read_csv(out["clinical"], sep="\t").patient_id.tolist() == ["CL-0001", "CL-0002"]
    assert sorted(p.name for p in Path(out["images"]).iterdir()) == ["CL-0001.nii.gz", "CL-0002.nii.gz"]


def test_one_bad_center_leaves_another_untouched(tmp_path):
    good = make_center(tmp_path, "GOOD", n=1)
    bad = make_center(tmp_path, "BAD", n=1, image_format="nifti", clinical_rows=[
        dict(CLINICAL_ROW, patient_id="BAD-0001", sex="?")])
    out = run(tmp_path, "GOOD", good)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest()
              for p in Path(out["clinical"]).parent.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match="center BAD, patient BAD-0001, column sex: unknown code"):
        run(tmp_path, "BAD", bad)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in Path(out["clinical"]).parent.rglob("*") if p.is_file()}
    assert before == after and len(before) == 8


# ------------------------------------------------------------------ privacy


def test_no_header_identifier_reaches_any_output(tmp_path, caplog):
    data = make_center(tmp_path, "PR", n=2, extra_series=True, mask_format="dicom-seg")
    header = pydicom.dcmread(next((data / "images" / "PR-0001").iterdir()))
    values = [str(header.get(k)) for k in PHI]
    assert values == list(PHI.values())
    with caplog.at_level(logging.DEBUG):
        out = run(tmp_path, "PR", data)
    files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert len(files) == 10  # 2 images, 2 tumor masks, 5 tables, the montage
    needles = [v.encode() for v in values] + [values[0].replace("^", " ").encode()]
    for path in files:
        blob = path.read_bytes()
        if path.name.endswith(".gz"):
            blob = gzip.decompress(blob)
        for needle in needles:
            assert needle not in blob, f"{needle!r} found in {path}"
    for v in values:
        assert v not in caplog.text
    assert Path(out["qc"]).exists()


def test_threads_give_the_same_outputs(tmp_path):
    data = make_center(tmp_path, "TH", n=3)
    one = outputs_for(tmp_path / "one", "TH")
    two = outputs_for(tmp_path / "two", "TH")
    ingest_center("TH", {"data": str(data)}, one, settings(), threads=1)
    ingest_center("TH", {"data": str(data)}, two, settings(), threads=2)
    for pid in ("TH-0001", "TH-0002", "TH-0003"):
        for key in ("images", "tumor"):
            a, b = (sitk.ReadImage(str(Path(o[key]) / f"{pid}.nii.gz")) for o in (one, two))
            assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    for key in ("clinical", "qc"):
        assert Path(one[key]).read_text() == Path(two[key]).read_text()


def test_patients_side_by_side_name_the_failing_patient(tmp_path):
    """DICOM patients run on forked processes: the failing one is still named, as an error
    (on_bad_patient: error) or as the excluded patient's reason (the default)."""
    data = make_center(tmp_path, "TF", n=3)
    _, tumor, _ = phantom()
    write_nifti(tumor, data / "tumor_masks" / "TF-0002.nii.gz", (1.0, 1.0, 2.0), ORIGIN)
    out = outputs_for(tmp_path / "out", "TF")
    with pytest.raises(InputError, match=r"patient TF-0002, .*tumor mask is not on the image grid"):
        ingest_center("TF", {"data": str(data)}, out, settings(on_bad_patient="error"), threads=2)
    ingest_center("TF", {"data": str(data)}, out, settings(), threads=2)
    excluded = pd.read_csv(Path(out["clinical"]).with_name("exclusions.tsv"), sep="\t")
    assert excluded["patient_id"].tolist() == ["TF-0002"]
    assert "tumor mask is not on the image grid" in excluded["reason"][0]


def test_patient_ids_keep_leading_zeros(tmp_path):
    path = tmp_path / "t.csv"
    table = [dict(CLINICAL_ROW, patient_id="007"), dict(CLINICAL_ROW, patient_id="010")]
    pd.DataFrame(table).to_csv(path, index=False)
    assert clinical.load_clinical(path, "Z").table.patient_id.tolist() == ["007", "010"]


def test_xlsx_table_with_a_named_sheet(tmp_path):
    path = tmp_path / "t.xlsx"
    with pd.ExcelWriter(path) as xw:
        pd.DataFrame({"README": ["not data"]}).to_excel(xw, sheet_name="README", index=False)
        pd.DataFrame([dict(CLINICAL_ROW, patient_id="X-1")]).to_excel(xw, sheet_name="clinical", index=False)
    t = clinical.load_clinical(path, "X", sheet="clinical").table
    assert t.patient_id.tolist() == ["X-1"] and t.bclc.tolist() == ["B"] and t.os_days.tolist() == [900]


def test_value_map_and_range_problems_are_reported_together(tmp_path):
    mapping = {"id_column": "patient_id",
               "columns": {"sex": {"from": "sex", "values": {"M": "M"}}, "age": {"from": "age"}}}
    text = clinical_problem(tmp_path, rows(sex="F", age=-4), mapping)
    assert "column sex: unknown code 'F' in source column 'sex'" in text
    assert "(and 1 more problem(s)" in text


def test_clinical_module_maps_codes_given_as_floats():
    table, missing, extras, problems = clinical.map_table(
        pd.DataFrame({"pid": ["a", "b"], "s": [1.0, 2.0]}),
        {"id_column": "pid", "columns": {"sex": {"from": "s", "values": {1: "M", 2: "F"}}}}, "C")
    assert not problems and table.sex.tolist() == ["M", "F"] and extras == []
    assert "age" in set(missing.column)


def test_mtnet_ingest_command(tmp_path):
    data = make_center(tmp_path, "CM", n=1, image_format="nifti")
    cmd = [str(VENV_BIN / "mtnet"), "ingest", "--data", str(data), "--center", "CM",
           "--out", str(tmp_path / "out"), "--spacing", "2", "2", "2.5"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=workflow_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    img = sitk.ReadImage(str(tmp_path / "out" / "images" / "CM-0001.nii.gz"))
    assert img.GetSpacing() == (2.0, 2.0, 2.5)
    set_entry(data, tumor_masks="missing")
    result = subprocess.run(cmd, capture_output=True, text=True, env=workflow_env(), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: center CM, ")
    assert "tumor_masks: path does not exist" in result.stderr
