"""The MTnet input: the liver's bounding box plus a margin, resampled to a fixed grid.

Paper §2.7: portal-phase CT cropped to the liver, resampled to a fixed size, HU windowed and
scaled; the tumor mask (the decoder's target) and the liver mask on the same grid.

On disk (``roi/{pid}.npz``, docs/data_contracts.md) the crop keeps its HU as int16
(rounded) with the window; :func:`load_roi` gives the windowed image in [0, 1], the same
function of the HU for every reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mtnet.errors import InputError
from mtnet.imaging import AIR_HU, Grid, fraction_to_grid, resample_image, window

ROI_KEYS = ("hu", "hu_window", "tumor", "liver", "spacing_mm", "origin_mm", "bbox_ijk")


@dataclass
class Roi:
    hu: np.ndarray  # int16 (z, y, x): HU, rounded, nothing below air
    hu_window: np.ndarray  # (low, high) HU scaled to [0, 1] in ``image``
    tumor: np.ndarray  # uint8 (z, y, x)
    liver: np.ndarray  # uint8 (z, y, x)
    spacing_mm: np.ndarray  # (x, y, z)
    origin_mm: np.ndarray  # (x, y, z), physical centre of voxel (0, 0, 0)
    bbox_ijk: np.ndarray  # (i0, j0, k0, i1, j1, k1): the crop in the source grid, end exclusive

    @property
    def image(self) -> np.ndarray:
        """The network's input: float32 (z, y, x) in [0, 1], the HU windowed."""
        return window(self.hu, self.hu_window)

    def arrays(self) -> dict:
        return {key: getattr(self, key) for key in ROI_KEYS}


def save_roi(roi: Roi, path) -> None:
    np.savez_compressed(path, **roi.arrays())


def load_roi(path) -> Roi:
    """A crop written by the tumor stage (``roi/{pid}.npz``)."""
    path = Path(path)
    if not path.exists():
        raise InputError("ROI crop not found", path=path, fix="run the tumor stage")
    with np.load(path) as npz:
        missing = [k for k in ROI_KEYS if k not in npz.files]
        if missing:
            raise InputError(f"ROI crop lacks {', '.join(missing)}", path=path,
                             fix="re-run the tumor stage (the crop's format changed)")
        return Roi(**{key: npz[key] for key in ROI_KEYS})


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
    hu = sitk.GetArrayFromImage(resample_image(image, target))

    def mask(m):
        frac = fraction_to_grid(m, target)
        out = frac >= 0.5
        if not out.any() and frac.max() > 0:
            out = frac > 0
        return out.astype(np.uint8)

    return Roi(
        hu=np.clip(np.rint(hu), AIR_HU, np.iinfo(np.int16).max).astype(np.int16),
        hu_window=np.asarray(hu_window, np.float64), tumor=mask(tumor), liver=mask(liver),
        spacing_mm=new_spacing.astype(np.float64), origin_mm=origin.astype(np.float64),
        bbox_ijk=bbox,
    )
