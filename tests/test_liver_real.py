"""The classical backend on real CT (../shared/data): Dice against TotalSegmentator's liver
label on its example CT, and a plausible liver volume on HCC-TACE-Seg HCC_048."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import shared_path

from mtnet import imaging
from mtnet.liver import classical, qc, segment_center

pytestmark = pytest.mark.shared_data
TOTALSEG_LIVER = 5


def to_ingest_grid(image: sitk.Image, spacing_mm: float = 1.5) -> sitk.Image:
    """What ingestion writes: identity direction, isotropic spacing, int16 HU."""
    oriented = imaging.reorient(image)
    return imaging.resample_hu(oriented, imaging.spacing_grid(oriented, spacing_mm))


def example_reference(folder) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """(CT, liver reference, slab covered by the reference), all on the CT's grid.

    ``example_seg.nii.gz`` is TotalSegmentator's output for ``example_ct_sm.nii.gz``, a
    30-slice part of ``example_ct.nii.gz`` whose header kept the full CT's origin: the
    slab is located by its voxels, and the reference outside it is unknown (not background).
    """
    ct = sitk.ReadImage(str(folder / "example_ct.nii.gz"))
    small = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_ct_sm.nii.gz")))
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_seg.nii.gz")))
    full = sitk.GetArrayFromImage(ct)
    n = small.shape[0]
    offsets = [k for k in range(full.shape[0] - n + 1) if np.array_equal(full[k : k + n], small)]
    assert len(offsets) == 1, "example_ct_sm is not a slab of example_ct"
    ref = np.zeros(full.shape, np.uint8)
    covered = np.zeros(full.shape, np.uint8)
    ref[offsets[0] : offsets[0] + n] = seg == TOTALSEG_LIVER
    covered[offsets[0] : offsets[0] + n] = 1
    out = []
    for arr in (ref, covered):
        img = sitk.GetImageFromArray(arr)
        img.CopyInformation(ct)
        out.append(img)
    return ct, out[0], out[1]


def test_classical_dice_against_totalsegmentator_on_example_ct():
    folder = shared_path("totalsegmentator_example_ct")
    ct, ref, covered = example_reference(folder)
    image = to_ingest_grid(ct)
    mask = sitk.GetArrayFromImage(classical.segment(image)).astype(bool)

    def on_grid(m):
        return sitk.GetArrayFromImage(
            sitk.Resample(m, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)).astype(bool)

    ref_arr, slab = on_grid(ref), on_grid(covered)
    dice = qc.dice(mask & slab, ref_arr)
    print(f"example CT: classical liver Dice {dice:.3f} vs TotalSegmentator (label 5)")
    assert dice >= 0.85


def read_hcc048() -> sitk.Image:
    folder = shared_path("hcc_tace_seg_HCC048_pv", "HCC048_portal_venous")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    ct = sitk.Cast(reader.Execute(), sitk.sitkInt16)
    ct = sitk.Maximum(ct, -1024)  # -2048 padding outside the field of view -> air
    return to_ingest_grid(ct)


def test_classical_volume_on_hcc048_is_plausible_and_montage_written(tmp_path):
    image = read_hcc048()
    images = tmp_path / "images"
    images.mkdir()
    sitk.WriteImage(image, str(images / "HCC-0048.nii.gz"))
    (tmp_path / "liver").mkdir()
    outputs = {"masks": str(tmp_path / "masks"), "qc": str(tmp_path / "qc.tsv"),
               "montage": str(tmp_path / "montage.png")}
    segment_center("HCC", "classical", {"images": str(images), "provided": str(tmp_path / "liver")},
                   outputs, {"volume_ml_range": [700, 3500]})
    table = pd.read_csv(outputs["qc"], sep="\t")
    volume = float(table.loc[0, "volume_ml"])
    print(f"HCC_048: classical liver volume {volume:.0f} mL")
    assert 1000 <= volume <= 2500
    assert table.loc[0, "volume_outlier"] == 0 and pd.isna(table.loc[0, "reference"])
    assert (tmp_path / "montage.png").stat().st_size > 10_000
