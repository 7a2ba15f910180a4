"""The MTnet input: the liver's bounding box plus a margin, resampled to a fixed grid.

Paper §2.7: portal-phase CT cropped to the liver, resampled to a fixed size, HU windowed and
scaled; the tumor mask (the decoder's target) and the liver mask on the same grid.

On disk (``roi/{pid}.npz``, docs/data_contracts.md) the crop keeps its masks and geometry
on the grid; its HU are either the grid's own (int16: a crop made in memory, or written
before December 2026) or, as the tumor stage writes them, a reference to the ingested CT it
was cut from (the file's path relative to the crop, the box of its voxels the grid
interpolates and their SHA-256): the loader re-reads that box and resamples it as the crop
was resampled, so the HU are the crop's as cut, bit for bit, and a CT changed since is an
error. CT noise does not compress: a 96^3 grid of HU took ~1 MB per patient, the same voxels
the ingested CT already holds. :func:`load_roi` gives the windowed image in [0, 1], the same
function of the HU for every reader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mtnet.errors import InputError
from mtnet.imaging import Grid, fraction_to_grid, image_fingerprint, resample_hu, window

ROI_KEYS = ("hu", "hu_window", "tumor", "liver", "spacing_mm", "origin_mm", "bbox_ijk")
GRID_KEYS = tuple(key for key in ROI_KEYS if key != "hu")
# the HU on disk: the grid's own (``hu``), or the ingested CT's box they are resampled from
SOURCE_KEYS = ("source_file", "source_ijk", "source_sha256")


@dataclass
class Roi:
    hu: np.ndarray  # int16 (z, y, x): HU, rounded, nothing below air
    hu_window: np.ndarray  # (low, high) HU scaled to [0, 1] in ``image``
    tumor: np.ndarray  # uint8 (z, y, x)
    liver: np.ndarray  # uint8 (z, y, x)
    spacing_mm: np.ndarray  # (x, y, z)
    origin_mm: np.ndarray  # (x, y, z), physical centre of voxel (0, 0, 0)
    bbox_ijk: np.ndarray  # (i0, j0, k0, i1, j1, k1): the crop in the source grid, end exclusive
    # the CT box ``hu`` was interpolated from (None: ``hu`` itself, on the crop's grid), its
    # (i0, j0, k0, i1, j1, k1) in the CT, and the CT's file where it has one
    source: sitk.Image | None = field(default=None, repr=False, compare=False)
    source_ijk: np.ndarray | None = field(default=None, repr=False, compare=False)
    source_file: Path | None = field(default=None, repr=False, compare=False)

    @property
    def image(self) -> np.ndarray:
        """The network's input: float32 (z, y, x) in [0, 1], the HU windowed."""
        return window(self.hu, self.hu_window)

    def arrays(self) -> dict:
        return {key: getattr(self, key) for key in ROI_KEYS}


def grid_hu(source: sitk.Image, grid: Grid) -> np.ndarray:
    """The crop's HU: ``source`` by :func:`~mtnet.imaging.resample_hu` on ``grid`` — the one
    definition, for the crop as cut and as loaded."""
    return sitk.GetArrayFromImage(resample_hu(source, grid))


def _box(image: sitk.Image, ijk) -> sitk.Image:
    i0, j0, k0, i1, j1, k1 = (int(v) for v in ijk)
    return image[i0:i1, j0:j1, k0:k1]


def save_roi(roi: Roi, path) -> None:
    """The crop's masks and geometry, with a reference to its CT's box where the crop knows
    its CT's file, else with the grid's HU."""
    path = Path(path)
    arrays = {key: getattr(roi, key) for key in GRID_KEYS}
    if roi.source_file is not None and roi.source is not None:
        arrays.update(source_file=np.array(os.path.relpath(os.path.abspath(roi.source_file),
                                                           os.path.abspath(path.parent))),
                      source_ijk=np.asarray(roi.source_ijk, np.int64),
                      source_sha256=np.array(image_fingerprint(roi.source)))
    else:
        arrays["hu"] = roi.hu
    np.savez_compressed(path, **arrays)


def load_roi(path) -> Roi:
    """A crop written by the tumor stage (``roi/{pid}.npz``), its HU on the grid."""
    path = Path(path)
    if not path.exists():
        raise InputError("ROI crop not found", path=path, fix="run the tumor stage")
    with np.load(path) as npz:
        missing = [k for k in GRID_KEYS if k not in npz.files]
        if "hu" not in npz.files:
            missing += [k for k in SOURCE_KEYS if k not in npz.files]
        if missing:
            raise InputError(f"ROI crop lacks {', '.join(missing)}", path=path,
                             fix="re-run the tumor stage (the crop's format changed)")
        arrays = {key: npz[key] for key in GRID_KEYS}
        if "hu" in npz.files:
            return Roi(hu=npz["hu"], **arrays)
        source_file, source_ijk, sha = (npz[k] for k in SOURCE_KEYS)
    ct_path = path.parent / str(source_file)
    if not ct_path.exists():
        raise InputError(f"the ingested CT the crop refers to ({ct_path}) is missing", path=path,
                         fix="keep results/ingest beside results/tumor, or re-run the tumor stage")
    source = _box(sitk.ReadImage(str(ct_path)), source_ijk)
    if image_fingerprint(source) != str(sha):
        raise InputError(f"the ingested CT {ct_path} changed since the crop was cut", path=path,
                         fix="re-run the tumor stage")
    grid = Grid(tuple(int(n) for n in arrays["tumor"].shape[::-1]),
                tuple(map(float, arrays["origin_mm"])), tuple(map(float, arrays["spacing_mm"])),
                source.GetDirection())
    return Roi(hu=grid_hu(source, grid), source=source, source_ijk=source_ijk,
               source_file=ct_path, **arrays)


def liver_bbox(liver: np.ndarray, spacing_xyz, margin_mm: float, size_xyz) -> np.ndarray:
    """(i0, j0, k0, i1, j1, k1) in voxel indices (x, y, z): the liver's bounding box grown by
    ``margin_mm`` on every side, clipped to the image; end exclusive."""
    zz, yy, xx = np.nonzero(liver)
    lo = np.array([xx.min(), yy.min(), zz.min()])
    hi = np.array([xx.max(), yy.max(), zz.max()]) + 1
    pad = np.ceil(margin_mm / np.asarray(spacing_xyz, float)).astype(int)
    lo = np.maximum(lo - pad, 0)
    hi = np.minimum(hi + pad, np.asarray(size_xyz))
    return np.concatenate([lo, hi]).astype(np.int64)


def crop_roi(image: sitk.Image, tumor: sitk.Image, liver: sitk.Image, grid_xyz, margin_mm: float,
             hu_window) -> Roi:
    """Crop the liver box (+ margin) and resample it to ``grid_xyz`` voxels.

    The box's physical extent is divided evenly over the grid (spacing = extent / grid per
    axis; the grid's voxels tile the box exactly). The CT is interpolated linearly (outside
    the image: -1024 HU) and rounded to int16, the masks by linear interpolation thresholded
    at 0.5; a tumor too small to survive that keeps every grid voxel its partial volume
    touches.
    """
    liver_arr = sitk.GetArrayViewFromImage(liver)
    spacing = np.array(image.GetSpacing())
    bbox = liver_bbox(liver_arr, spacing, margin_mm, image.GetSize())
    grid = np.asarray(grid_xyz, int)
    extent = (bbox[3:] - bbox[:3]) * spacing  # mm covered by the crop, per axis (x, y, z)
    new_spacing = extent / grid
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    # corner of the crop = corner of voxel bbox[:3] = its centre - half a source voxel
    corner = np.array(image.TransformContinuousIndexToPhysicalPoint(
        tuple(float(v) - 0.5 for v in bbox[:3])))
    origin = corner + direction @ (new_spacing / 2.0)

    target = Grid(tuple(int(g) for g in grid), tuple(origin), tuple(new_spacing), image.GetDirection())
    # linear interpolation near the box's faces reaches one voxel beyond them
    lo = np.maximum(bbox[:3] - 1, 0)
    hi = np.minimum(bbox[3:] + 1, np.asarray(image.GetSize()))
    source_ijk = np.concatenate([lo, hi]).astype(np.int64)
    source = _box(image, source_ijk)

    def mask(m):
        frac = fraction_to_grid(m, target)
        out = frac >= 0.5
        if not out.any() and frac.max() > 0:
            out = frac > 0
        return out.astype(np.uint8)

    return Roi(
        hu=grid_hu(source, target), hu_window=np.asarray(hu_window, np.float64),
        tumor=mask(tumor), liver=mask(liver),
        spacing_mm=new_spacing.astype(np.float64), origin_mm=origin.astype(np.float64),
        bbox_ijk=bbox, source=source, source_ijk=source_ijk,
    )
