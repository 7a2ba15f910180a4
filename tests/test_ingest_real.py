"""Ingestion on real public data from ../shared/data (skipped where it is absent)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
import yaml
from conftest import REPO, shared_path

from mtnet import imaging
from mtnet.factors import CANONICAL_COLUMNS
from mtnet.io import clinical, dicom, ingest_center

pytestmark = pytest.mark.shared_data
MAPPING = REPO / "config" / "mappings" / "hcc_tace_seg.yaml"
# A box inside the liver of HCC_048 (slices 45-55, rows 180-239, columns 130-199), found by
# looking at the series: the right lobe, lateral to the portal vein.
LIVER_BOX = (slice(45, 56), slice(180, 240), slice(130, 200))


def hcc048_series():
    folder = shared_path("hcc_tace_seg_HCC048_pv", "HCC048_portal_venous")
    scan = dicom.scan_folder(folder)
    series, reason = dicom.pick_series(scan)
    return folder, series, reason


def test_hcc048_loads_at_native_geometry_in_hu():
    folder, series, reason = hcc048_series()
    assert reason == "only image series" and series.number == 6
    loaded = dicom.load_series(series)
    assert loaded.shape_xyz == (512, 512, 89)
    assert np.allclose(loaded.image.GetSpacing(), (0.703125, 0.703125, 2.5))
    assert np.allclose(loaded.image.GetOrigin(), (-180, -180, -396))
    assert loaded.dropped == [] and loaded.warnings == []
    arr = sitk.GetArrayFromImage(loaded.image)
    # padding: stored -1024 with intercept -1024 is HU -2048 outside the field of view
    raw = [pydicom.dcmread(f) for f in series.files[:5]]
    assert any((d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) < -1024).any() for d in raw)
    assert arr.min() == -1024
    liver = arr[LIVER_BOX]
    assert 60 < np.median(liver) < 160  # enhanced liver parenchyma, portal-venous phase
    assert np.percentile(liver, 25) > 40


def test_hcc048_full_ingest_with_the_real_clinical_table(tmp_path, caplog):
    folder, series, _ = hcc048_series()
    loaded = dicom.load_series(series)
    images = tmp_path / "images"
    images.mkdir()
    (images / "HCC_048").symlink_to(folder)
    # a spherical 'tumor' (radius 8 mm) inside the liver box, on the series' own grid
    z, y, x = np.indices(sitk.GetArrayFromImage(loaded.image).shape, dtype=float)
    sphere = ((z - 50) * 2.5) ** 2 + ((y - 210) * 0.703125) ** 2 + ((x - 165) * 0.703125) ** 2 <= 64
    mask = sitk.GetImageFromArray(sphere.astype(np.uint8))
    mask.CopyInformation(loaded.image)
    (tmp_path / "tumor").mkdir()
    sitk.WriteImage(mask, str(tmp_path / "tumor" / "HCC_048.nii.gz"), True)
    entry = {"role": "external", "source": "files", "images": str(images), "image_format": "dicom",
             "tumor_masks": str(tmp_path / "tumor"), "tumor_mask_format": "nifti",
             "clinical": str(shared_path("hcc_tace_seg_clinical", "HCC-TACE-Seg_clinical_data-V2.xlsx")),
             "clinical_mapping": str(MAPPING)}
    base = tmp_path / "out"
    outputs = {"images": base / "images", "tumor": base / "tumor", "liver": base / "liver",
               "clinical": base / "clinical.tsv", "qc": base / "qc.tsv", "montage": base / "qc_montage.png"}
    inputs = {k: entry[k] for k in ("images", "tumor_masks", "clinical", "clinical_mapping")}
    ingest_center("HTS", inputs, {k: str(v) for k, v in outputs.items()},
                  {"center": entry, "ingest": {"spacing_mm": [1.5, 1.5, 1.5], "unmatched": "exclude"}})
    img = sitk.ReadImage(str(base / "images" / "HCC_048.nii.gz"))
    tum = sitk.ReadImage(str(base / "tumor" / "HCC_048.nii.gz"))
    arr, tarr = sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(tum)
    # 0.70 mm pixels to 1.5 mm; the 2.5 mm slices kept (not upsampled)
    assert img.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1) and img.GetSpacing() == (1.5, 1.5, 2.5)
    assert img.GetPixelID() == sitk.sitkInt16 and arr.min() == -1024
    assert img.GetSize() == (240, 240, 89)  # floor(359.3 / 1.5) + 1, the 89 slices
    assert abs(tarr.sum() * 1.5**2 * 2.5 - 4 / 3 * np.pi * 8**3) < 0.15 * 4 / 3 * np.pi * 8**3
    assert 60 < np.median(arr[tarr > 0]) < 160  # the mask still sits in the liver
    qc = pd.read_csv(base / "qc.tsv", sep="\t")
    assert qc.shape_before.tolist() == ["512x512x89"]
    assert qc.spacing_before_mm.tolist() == ["0.7031,0.7031,2.5"]
    table = pd.read_csv(base / "clinical.tsv", sep="\t")
    assert table.patient_id.tolist() == ["HCC_048"] and table.center.tolist() == ["HTS"]
    assert len(pd.read_csv(base / "exclusions.tsv", sep="\t")) == 104
    # privacy: the header's PatientID / PatientName never reach an output
    header = pydicom.dcmread(series.files[0], stop_before_pixels=True)
    needles = [str(header.PatientID).encode(), str(header.PatientName).encode()]
    needles += [str(header.get(k)).encode() for k in ("PatientBirthDate", "StudyDate") if header.get(k)]
    for path in base.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            blob = gzip.decompress(blob) if path.name.endswith(".gz") else blob
            assert not any(n in blob for n in needles), path


def test_totalsegmentator_jpeg2000_series_matches_references():
    folder = shared_path("totalsegmentator_example_ct", "example_ct_dicom")
    scan = dicom.scan_folder(folder)
    series, _ = dicom.pick_series(scan)
    ts = pydicom.dcmread(series.files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert ts == "1.2.840.10008.1.2.4.90"  # JPEG 2000 lossless
    loaded = dicom.load_series(series)
    ours = sitk.GetArrayFromImage(loaded.image)
    # independent reader: SimpleITK/GDCM on the same files, same voxels where both are in the FOV
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    gdcm = reader.Execute()
    assert gdcm.GetSize() == loaded.image.GetSize()
    assert np.allclose(gdcm.GetOrigin(), loaded.image.GetOrigin())
    assert np.allclose(gdcm.GetSpacing(), loaded.image.GetSpacing())
    ref = sitk.GetArrayFromImage(gdcm)
    inside = ref >= -1024
    assert inside.mean() > 0.5 and np.array_equal(ours[inside], ref[inside])
    # TotalSegmentator's segmentation of this DICOM (RAS-stored NIfTI) lies on exactly our grid
    seg = sitk.ReadImage(str(shared_path("totalsegmentator_example_ct", "example_seg_dicom.nii.gz")))
    on_ours = sitk.Resample(seg, loaded.image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    labels = sitk.GetArrayFromImage(on_ours)
    assert np.array_equal(np.bincount(labels.ravel(), minlength=120),
                          np.bincount(sitk.GetArrayFromImage(seg).ravel(), minlength=120))
    liver = ours[labels == 5]
    assert liver.size > 1000 and 20 < np.median(liver) < 200
    assert imaging.grid_difference(seg, loaded.image) == "direction differs"
    assert imaging.same_voxel_centres(loaded.image, seg)  # accepted as a mask of this image


def test_totalsegmentator_nifti_does_not_overlap_its_dicom():
    """example_ct.nii.gz is another scan than example_ct_dicom: their z ranges are disjoint,
    so the DICOM is compared with the segmentation made on it (above), not with this file."""
    nii = sitk.ReadImage(str(shared_path("totalsegmentator_example_ct", "example_ct.nii.gz")))
    series, _ = dicom.pick_series(dicom.scan_folder(shared_path("totalsegmentator_example_ct", "example_ct_dicom")))
    loaded = dicom.load_series(series)
    def z_range(img):
        return sorted(img.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in (0, img.GetSize()[2] - 1))

    z_nii, z_dcm = z_range(nii), z_range(loaded.image)
    assert z_dcm[1] < z_nii[0]


@pytest.mark.parametrize("name", ["HCC-TACE-Seg_clinical_data-V2.xlsx", "clinical_Data.csv"])
def test_hcc_tace_seg_clinical_table_through_the_mapping(name):
    path = shared_path("hcc_tace_seg_clinical", name)
    result = clinical.load_clinical(path, "HTS", MAPPING)
    t = result.table
    src = clinical.read_table(path)
    assert len(t) == 105 and t.patient_id.is_unique
    assert list(t.columns[: len(CANONICAL_COLUMNS) + 1]) == CANONICAL_COLUMNS + ["center"]
    assert np.allclose(t.os_days, src.OS * 7) and np.allclose(t.ttp_days, src.TTP * 7)
    assert t.child_pugh.value_counts().to_dict() == {"A": 86, "B": 18, "C": 1}
    assert t.bclc.value_counts().to_dict() == {"C": 66, "B": 24, "A": 12, "D": 3}
    assert t.sex.value_counts().to_dict() == {"M": 68, "F": 37}
    assert t.hbv.value_counts().to_dict() == {"0": 80, "1": 25}  # HBV only 9 + HCV and HBV 16
    assert np.allclose(t.afp_ng_ml, src.AFP)
    assert t.baseline_vascular_invasion.sum() == 23
    assert np.allclose(t.max_diameter_mm.dropna(), src.Tr_Size.dropna() * 10)
    assert set(t.treatment) == {"TACE"}
    # derived AFP group agrees with the table's own <400 / >=400 grouping
    assert ((t.afp_ng_ml >= 400) == (src.AFP_group == ">=400")).all()
    missing = set(result.missing.column)
    assert {"mvi", "time_to_mvi_days", "lesion_number", "capsule"} <= missing
    assert t.mvi.isna().all() and t.time_to_mvi_days.isna().all()  # never invented
    assert not missing & {"age", "sex", "child_pugh", "bclc", "afp_ng_ml", "os_days", "death"}


def test_mapping_file_codes_agree_with_the_glossary():
    glossary = pd.read_excel(shared_path("hcc_tace_seg_clinical", "HCC-TACE-Seg_clinical_data-V2.xlsx"),
                             sheet_name="glossary", header=None)
    text = dict(zip(glossary[0].astype(str).str.strip(), glossary[1].astype(str)))
    mapping = yaml.safe_load(Path(MAPPING).read_text())
    assert "1=Male, 2=Female" in text["Sex"] and mapping["columns"]["sex"]["values"] == {1: "M", 2: "F"}
    assert "(Weeks)" in text["TTP"] and mapping["extra"]["ttp_days"]["unit"] == "weeks"
    assert "(weeks)" in text["OS"] and mapping["columns"]["os_days"]["unit"] == "weeks"
    assert "(cm)" in text["Tr_Size"] and mapping["columns"]["max_diameter_mm"]["unit"] == "cm"
    assert "died at follow-up date = 1" in text["Death_1_StillAliveorLostToFU_0"]
