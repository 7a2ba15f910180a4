"""Tumor measurements, ring, ROI crop and error cases on phantoms with known geometry."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from liver_phantom import abdomen

from mtnet.errors import InputError
from mtnet.config import section
from mtnet.imaging import window
from mtnet.tumor import INDEX_COLUMNS, LESION_COLUMNS, measure, process_center
from mtnet.tumor.roi import GRID_KEYS, ROI_KEYS, SOURCE_KEYS, Roi, crop_roi, liver_bbox, load_roi, save_roi

SPACING = (0.8, 0.8, 2.5)  # x, y, z: in-plane finer than the slices, as in real CT


def _grid(shape_zyx, spacing_xyz):
    z, y, x = (np.arange(n) for n in shape_zyx)
    zz, yy, xx = np.meshgrid(z * spacing_xyz[2], y * spacing_xyz[1], x * spacing_xyz[0], indexing="ij")
    return zz, yy, xx


def ellipsoid_mask(shape_zyx, spacing_xyz, centre_mm_xyz, radii_mm_xyz, rotate_deg=0.0):
    zz, yy, xx = _grid(shape_zyx, spacing_xyz)
    cx, cy, cz = centre_mm_xyz
    t = np.deg2rad(rotate_deg)  # rotation in the axial plane
    u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
    v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
    rx, ry, rz = radii_mm_xyz
    return (u / rx) ** 2 + (v / ry) ** 2 + ((zz - cz) / rz) ** 2 <= 1.0


# ------------------------------------------------------------------ measurements


@pytest.mark.parametrize(
    "radii,rotate,expected",
    [
        ((20.0, 20.0, 20.0), 0.0, 40.0),  # sphere: 40 mm
        ((30.0, 12.0, 10.0), 0.0, 60.0),  # ellipsoid, long axis along x
        ((25.0, 10.0, 30.0), 37.0, 50.0),  # oblique in-plane, taller than wide: axial 50 mm
    ],
)
def test_longest_axial_diameter_within_one_voxel(radii, rotate, expected):
    shape = (40, 120, 120)
    mask = ellipsoid_mask(shape, SPACING, (48.0, 48.0, 50.0), radii, rotate)
    d = measure.longest_axial_diameter(mask, SPACING[::-1])
    assert abs(d - expected) <= np.hypot(SPACING[0], SPACING[1])


def test_single_voxel_lesion_measures_one_voxel():
    mask = np.zeros((3, 5, 5), bool)
    mask[1, 2, 2] = True
    assert measure.longest_axial_diameter(mask, (2.5, 0.8, 0.8)) == pytest.approx(0.8)


def test_lesions_counted_and_target_chosen_by_rule():
    shape = (40, 120, 120)
    long_flat = ellipsoid_mask(shape, SPACING, (30.0, 30.0, 50.0), (18.0, 6.0, 5.0))  # 36 mm, small
    round_big = ellipsoid_mask(shape, SPACING, (70.0, 70.0, 50.0), (14.0, 14.0, 25.0))  # 28 mm, big
    labels, n = measure.label_lesions(long_flat | round_big)
    assert n == 2
    lesions = measure.lesion_table(labels, n, SPACING[::-1])
    by_diameter = measure.pick_target(lesions, "longest_axial_diameter")
    by_volume = measure.pick_target(lesions, "largest_volume")
    assert abs(by_diameter["diameter_mm"] - 36.0) <= 1.2
    assert abs(by_volume["diameter_mm"] - 28.0) <= 1.2
    assert by_volume["volume_ml"] > by_diameter["volume_ml"]


def test_diagonal_neighbours_are_one_lesion():
    mask = np.zeros((4, 6, 6), bool)
    mask[1, 1, 1] = mask[2, 2, 2] = True
    assert measure.label_lesions(mask)[1] == 1


def test_diameter_disagreement_flag():
    assert measure.diameter_disagreement(50.0, 40.0, 0.2) == 1.0  # 25% apart
    assert measure.diameter_disagreement(45.0, 40.0, 0.2) == 0.0
    assert np.isnan(measure.diameter_disagreement(45.0, float("nan"), 0.2))


def test_ring_width_clipped_to_liver_and_excludes_tumor():
    shape, spacing = (60, 60, 60), (1.0, 1.0, 1.0)
    tumor = ellipsoid_mask(shape, spacing, (30.0, 30.0, 30.0), (8.0, 8.0, 8.0))
    liver = np.zeros(shape, bool)
    liver[:, :, :33] = True  # the liver ends 3 mm right of the tumor centre plane
    liver |= tumor
    ring = measure.peritumoral_ring(tumor, liver, 5.0, spacing)
    assert not (ring & tumor).any() and not (ring & ~liver).any()
    dist = measure.ndi.distance_transform_edt(~tumor)
    assert dist[ring].max() <= 5.0 and dist[ring].min() > 0
    # every liver voxel within 5 mm of the tumor is in the ring
    assert ((dist > 0) & (dist <= 5.0) & liver & ~ring).sum() == 0
    # a shell of 8..13 mm radius, halved by the liver's edge at x = 33 (centre 30)
    full_shell = 4 / 3 * np.pi * (13**3 - 8**3)
    assert 0.3 * full_shell < ring.sum() < 0.75 * full_shell


def test_outside_fraction():
    tumor = np.zeros((10, 10, 10), bool)
    tumor[2:6, 2:6, 2:6] = True
    liver = np.zeros_like(tumor)
    liver[:, :, :4] = True
    assert measure.outside_fraction(tumor, liver) == pytest.approx(0.5)


# ------------------------------------------------------------------ ROI crop


def _image(arr, spacing_xyz, origin=(10.0, -20.0, 5.0)):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing_xyz)
    img.SetOrigin(origin)
    return img


def test_roi_crop_geometry_and_window():
    shape = (50, 100, 110)
    liver = np.zeros(shape, np.uint8)
    liver[10:30, 20:70, 30:90] = 1  # box 60 x 50 x 20 voxels (x, y, z)
    tumor = np.zeros(shape, np.uint8)
    tumor[15:25, 35:55, 50:70] = 1
    hu = np.full(shape, -1000, np.int16)
    hu[liver == 1] = 100
    hu[tumor == 1] = 240
    spacing = (0.8, 0.8, 2.5)
    img = _image(hu, spacing)
    roi = crop_roi(img, _image(tumor, spacing), _image(liver, spacing), (32, 24, 16), 4.0,
                   (-100, 240))
    assert roi.image.shape == (16, 24, 32) and roi.image.dtype == np.float32
    assert roi.hu.dtype == np.int16 and roi.hu.min() >= -1024
    assert roi.tumor.shape == roi.liver.shape == roi.image.shape
    assert roi.image.min() >= 0.0 and roi.image.max() <= 1.0
    # margin 4 mm = 5 voxels in x/y, 2 in z; end exclusive
    assert list(roi.bbox_ijk) == [25, 15, 8, 95, 75, 32]
    extent = (roi.bbox_ijk[3:] - roi.bbox_ijk[:3]) * np.array(spacing)
    assert np.allclose(roi.spacing_mm * (32, 24, 16), extent)
    # the grid starts at the crop's corner: first voxel centre half a new voxel inside
    corner = np.array((10.0, -20.0, 5.0)) + (roi.bbox_ijk[:3] - 0.5) * np.array(spacing)
    assert np.allclose(roi.origin_mm, corner + roi.spacing_mm / 2)
    # masks keep their physical size: volume preserved within a few percent
    voxel = np.prod(roi.spacing_mm)
    assert roi.liver.sum() * voxel == pytest.approx(liver.sum() * np.prod(spacing), rel=0.1)
    assert roi.tumor.sum() * voxel == pytest.approx(tumor.sum() * np.prod(spacing), rel=0.15)
    # tumor at 240 HU maps to 1, liver at 100 HU to 200/340
    assert np.median(roi.image[roi.tumor == 1]) == pytest.approx(1.0, abs=0.01)
    inner_liver = (roi.liver == 1) & (roi.tumor == 0)
    assert np.median(roi.image[inner_liver]) == pytest.approx(200 / 340, abs=0.02)


def test_roi_bbox_clipped_to_image():
    liver = np.zeros((10, 10, 10), bool)
    liver[0:5, 0:5, 0:5] = True
    assert list(liver_bbox(liver, (1, 1, 1), 20.0, (10, 10, 10))) == [0, 0, 0, 10, 10, 10]


def test_window_scales_linearly():
    out = window(np.array([-500.0, -100.0, 70.0, 240.0, 900.0]), (-100, 240))
    assert np.allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0])


def test_saved_roi_loads_the_crop_it_was(tmp_path):
    """The crop keeps its HU (rounded, int16): the loaded image is the windowed HU of the
    linear resampling to within half a HU, and everything else comes back unchanged."""
    ct, liver, tumor = abdomen(4.0, seed=5, tumor_radius_mm=15.0)
    roi = crop_roi(ct, tumor, liver, (24, 20, 16), 8.0, (-100, 240))
    save_roi(roi, tmp_path / "p.npz")
    back = load_roi(tmp_path / "p.npz")
    for key in ROI_KEYS:
        assert np.array_equal(getattr(back, key), getattr(roi, key)), key
    assert back.hu.dtype == np.int16 and back.image.dtype == np.float32
    target = sitk.Resample(ct, [24, 20, 16], sitk.Transform(), sitk.sitkLinear,
                           tuple(back.origin_mm), tuple(back.spacing_mm), ct.GetDirection(), -1024.0,
                           sitk.sitkFloat32)
    exact = window(sitk.GetArrayFromImage(target), (-100, 240))
    assert np.abs(back.image - exact).max() <= 0.5 / 340 + 1e-6
    assert 0 < back.image.mean() < 1


def test_the_crop_refers_to_its_ct_and_loads_the_grid_it_had(tmp_path):
    """On disk the crop holds no HU: it names the ingested CT (relative to itself), the box
    of its voxels (+ one voxel where the image has one) and their SHA-256. Loaded, the grid's
    HU are those of the linear resampling of the whole CT, voxel for voxel; the results tree
    can move; a CT changed or missing is an error naming it."""
    ct, liver, tumor = abdomen(4.0, seed=7, tumor_radius_mm=15.0)
    ct = sitk.Cast(ct, sitk.sitkInt16)  # as ingested
    images, roi_dir = tmp_path / "run" / "ingest" / "C" / "images", tmp_path / "run" / "tumor" / "C" / "roi"
    images.mkdir(parents=True)
    roi_dir.mkdir(parents=True)
    sitk.WriteImage(ct, str(images / "P1.nii.gz"), True)
    roi = crop_roi(ct, tumor, liver, (64, 56, 48), 8.0, (-100, 240))
    whole = sitk.Resample(ct, [64, 56, 48], sitk.Transform(), sitk.sitkLinear,
                          tuple(roi.origin_mm), tuple(roi.spacing_mm), ct.GetDirection(), -1024.0,
                          sitk.sitkFloat32)
    expected = np.clip(np.rint(sitk.GetArrayFromImage(whole)), -1024, 32767).astype(np.int16)
    assert np.array_equal(roi.hu, expected)
    roi.source_file = images / "P1.nii.gz"
    save_roi(roi, roi_dir / "P1.npz")
    with np.load(roi_dir / "P1.npz") as npz:
        assert set(npz.files) == set(GRID_KEYS) | set(SOURCE_KEYS)
        assert str(npz["source_file"]) == "../../../ingest/C/images/P1.nii.gz"
        box = roi.bbox_ijk
        assert list(npz["source_ijk"]) == list(np.concatenate([np.maximum(box[:3] - 1, 0),
                                                               np.minimum(box[3:] + 1, ct.GetSize())]))
    back = load_roi(roi_dir / "P1.npz")
    assert np.array_equal(back.hu, expected)
    for key in ROI_KEYS:
        assert np.array_equal(getattr(back, key), getattr(roi, key)), key
    (tmp_path / "run").rename(tmp_path / "moved")
    moved = tmp_path / "moved" / "tumor" / "C" / "roi" / "P1.npz"
    assert np.array_equal(load_roi(moved).hu, expected)
    changed = sitk.GetArrayFromImage(ct)
    changed[tuple(int(v) for v in (box[5] - 2, box[4] - 2, box[3] - 2))] += 1
    edited = sitk.GetImageFromArray(changed)
    edited.CopyInformation(ct)
    ct_path = tmp_path / "moved" / "ingest" / "C" / "images" / "P1.nii.gz"
    sitk.WriteImage(edited, str(ct_path), True)
    with pytest.raises(InputError, match="P1.npz: the ingested CT .*P1.nii.gz changed since the crop"):
        load_roi(moved)
    ct_path.unlink()
    with pytest.raises(InputError, match="P1.npz: the ingested CT the crop refers to .* is missing"):
        load_roi(moved)
    # a crop without its CT's file (made in memory) keeps the grid's HU, the former format
    bare = Roi(**{key: getattr(roi, key) for key in ROI_KEYS})
    save_roi(bare, tmp_path / "bare.npz")
    with np.load(tmp_path / "bare.npz") as npz:
        assert set(npz.files) == set(ROI_KEYS) and np.array_equal(npz["hu"], roi.hu)
    again = load_roi(tmp_path / "bare.npz")
    for key in ROI_KEYS:
        assert np.array_equal(getattr(again, key), getattr(roi, key)), key


def test_load_roi_of_another_format_names_the_file(tmp_path):
    np.savez_compressed(tmp_path / "old.npz", image=np.zeros((4, 4, 4), np.float32))
    with pytest.raises(InputError, match="old.npz: ROI crop lacks hu_window, tumor, .*, source_file"):
        load_roi(tmp_path / "old.npz")
    with pytest.raises(InputError, match="ROI crop not found"):
        load_roi(tmp_path / "absent.npz")


# ------------------------------------------------------------------ process_center


def _center(tmp_path, n=2, table_diameters=(30.0, 45.0)):
    base = tmp_path / "ingest" / "C1"
    dirs = {k: base / k for k in ("images", "tumor")}
    dirs["liver"] = tmp_path / "liver" / "C1" / "masks"
    for d in dirs.values():
        d.mkdir(parents=True)
    pids = [f"C1-{i:04d}" for i in range(n)]
    for i, pid in enumerate(pids):
        ct, liver, tumor = abdomen(4.0, seed=i, tumor_radius_mm=15.0)
        sitk.WriteImage(ct, str(dirs["images"] / f"{pid}.nii.gz"))
        sitk.WriteImage(liver, str(dirs["liver"] / f"{pid}.nii.gz"))
        sitk.WriteImage(tumor, str(dirs["tumor"] / f"{pid}.nii.gz"))
    clinical = base / "clinical.tsv"
    pd.DataFrame({"patient_id": pids, "age": 60, "max_diameter_mm": list(table_diameters[:n])}).to_csv(
        clinical, sep="\t", index=False)
    inputs = {k: str(v) for k, v in dirs.items()} | {"clinical": str(clinical)}
    out = tmp_path / "tumor" / "C1"
    outputs = {"lesions": str(out / "lesions.tsv"), "roi": str(out / "roi"),
               "rings": str(out / "rings")}
    return inputs, outputs, pids


SETTINGS = section("tumor", {"roi_grid": [32, 32, 24]})


def test_process_center_outputs_follow_the_contract(tmp_path):
    inputs, outputs, pids = _center(tmp_path)
    process_center("C1", inputs, outputs, SETTINGS)
    lesions = pd.read_csv(outputs["lesions"], sep="\t")
    assert list(lesions.columns) == LESION_COLUMNS
    assert list(lesions["patient_id"]) == pids
    assert (lesions["n_lesions"] == 1).all()
    # the phantom tumor is a 30 mm sphere at 4 mm voxels
    assert ((lesions["target_diameter_mm"] - 30.0).abs() <= 4.0 * np.sqrt(2)).all()
    assert list(lesions["diameter_disagreement"]) == [0, 1]  # 45 mm in the table: > 20% off
    assert (lesions["outside_liver_fraction"] == 0).all()
    assert (lesions["ring_volume_ml"] > 0).all()
    index = pd.read_csv(f"{outputs['roi']}/index.tsv", sep="\t")
    assert list(index.columns) == INDEX_COLUMNS
    assert list(index["file"]) == [f"{p}.npz" for p in pids] and (index["grid"] == "32x32x24").all()
    with np.load(f"{outputs['roi']}/{pids[0]}.npz") as npz:
        assert set(npz.files) == set(GRID_KEYS) | set(SOURCE_KEYS)  # no HU: the CT's box
        assert npz["tumor"].dtype == npz["liver"].dtype == np.uint8
    roi = load_roi(f"{outputs['roi']}/{pids[0]}.npz")
    assert roi.image.shape == (24, 32, 32) and roi.image.dtype == np.float32
    assert np.array_equal(roi.image, window(roi.hu, SETTINGS["hu_window"]))
    assert roi.tumor.dtype == np.uint8 and roi.tumor.any()
    assert not (roi.tumor.astype(bool) & ~roi.liver.astype(bool)).any()
    ring = sitk.ReadImage(f"{outputs['rings']}/{pids[0]}.nii.gz")
    image = sitk.ReadImage(f"{inputs['images']}/{pids[0]}.nii.gz")
    assert ring.GetSize() == image.GetSize() and ring.GetPixelID() == sitk.sitkUInt8


def _rewrite(path, fn):
    img = sitk.ReadImage(path)
    arr = fn(sitk.GetArrayFromImage(img))
    out = sitk.GetImageFromArray(arr.astype(np.uint8))
    out.CopyInformation(img)
    sitk.WriteImage(out, path)


@pytest.mark.parametrize(
    "what,change,message",
    [
        ("tumor", lambda a: np.zeros_like(a), "patient C1-0001.*tumor mask is empty"),
        ("liver", lambda a: np.zeros_like(a), "patient C1-0001.*liver mask is empty"),
        # a lesion in the first rows (anterior to the body), nowhere near the liver
        ("tumor", lambda a: np.indices(a.shape)[1] < 3, "patient C1-0001.*wholly outside the liver"),
        # the liver cut through the tumor's centre (x index 24.5): about half of it outside
        ("liver", lambda a: a * (np.indices(a.shape)[2] < 25),
         "patient C1-0001.*% of the tumor lies outside the liver mask"),
    ],
)
def test_process_center_errors_name_the_patient(tmp_path, what, change, message):
    inputs, outputs, _ = _center(tmp_path)
    _rewrite(f"{inputs[what]}/C1-0001.nii.gz", change)
    with pytest.raises(InputError, match=message):
        process_center("C1", inputs, outputs, dict(SETTINGS, on_bad_patient="error"))
    with pytest.raises(InputError, match=message):  # patients side by side
        process_center("C1", inputs, outputs, dict(SETTINGS, on_bad_patient="error"), threads=2)
    # by default the bad patient is excluded with its reason and the other one is processed
    process_center("C1", inputs, outputs, SETTINGS)
    assert pd.read_csv(outputs["lesions"], sep="\t").patient_id.tolist() == ["C1-0000"]
    excluded = pd.read_csv(Path(outputs["lesions"]).with_name("exclusions.tsv"), sep="\t")
    assert excluded.patient_id.tolist() == ["C1-0001"]
    reason = excluded.reason[0]
    assert re.search(message.split(".*", 1)[1], reason) and f"C1-0001.nii.gz: " in reason, reason
    assert "(fix: " in reason
    assert sorted(p.name for p in Path(outputs["roi"]).glob("*.npz")) == ["C1-0000.npz"]


def test_process_center_threads_give_the_same_files(tmp_path):
    inputs, one, pids = _center(tmp_path, n=3, table_diameters=(30.0, 45.0, 31.0))
    two = {k: v.replace("/tumor/C1", "/tumor2/C1") for k, v in one.items()}
    process_center("C1", inputs, one, SETTINGS, threads=1)
    process_center("C1", inputs, two, SETTINGS, threads=2)
    files = sorted(p.relative_to(tmp_path / "tumor") for p in (tmp_path / "tumor").rglob("*")
                   if p.is_file())
    assert len(files) == 2 + 2 * len(pids) + 1  # lesions, exclusions, rings and crops, the index
    for rel in files:
        assert (tmp_path / "tumor" / rel).read_bytes() == (tmp_path / "tumor2" / rel).read_bytes(), rel


def test_process_center_mask_on_another_grid(tmp_path):
    inputs, outputs, _ = _center(tmp_path)
    _, _, tumor = abdomen(3.0, seed=1)
    sitk.WriteImage(tumor, f"{inputs['tumor']}/C1-0001.nii.gz")
    with pytest.raises(InputError, match="patient C1-0001.*tumor mask is on another grid"):
        process_center("C1", inputs, outputs, dict(SETTINGS, on_bad_patient="error"))
