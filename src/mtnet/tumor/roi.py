"""The MTnet input: the liver's bounding box plus a margin, resampled to a fixed grid.

Paper §2.7: portal-phase CT cropped to the liver, resampled to a fixed size, HU windowed and
scaled; the tumor mask (the decoder's target) and the liver mask on the same grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from mtnet.imaging import Grid, fraction_to_grid, resample_image, window


@dataclass
class Roi:
    image: np.ndarray  # float32 (z, y, x) in [0, 1]
    tumor: np.ndarray  # uint8 (z, y, x)
    liver: np.ndarray  # uint8 (z, y, x)
    spacing_mm: np.ndarray  # (x, y, z)
    origin_mm: np.ndarray  # (x, y, z), physical centre of voxel (0, 0, 0)
    bbox_ijk: np.ndarray  # (i0, j0, k0, i1, j1, k1): the crop in the source grid, end exclusive

    def arrays(self) -> dict:
        return {
            "image": self.image, "tumor": self.tumor, "liver": self.liver,
            "spacing_mm": self.spacing_mm, "origin_mm": self.origin_mm, "bbox_ijk": self.bbox_ijk,
        }


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
    the image: -1024 HU), the masks by linear interpolation thresholded at 0.5; a tumor too
    small to survive that keeps every grid voxel its partial volume touches.
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
        image=window(hu, hu_window), tumor=mask(tumor), liver=mask(liver),
        spacing_mm=new_spacing.astype(np.float64), origin_mm=origin.astype(np.float64),
        bbox_ijk=bbox,
    )
