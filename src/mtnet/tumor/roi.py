"""The MTnet input: the liver's bounding box plus a margin, resampled to a fixed grid.

Paper §2.7: portal-phase CT cropped to the liver, resampled to a fixed size, HU windowed and
scaled; the tumor mask (the decoder's target) and the liver mask on the same grid.

On disk (``roi/{pid}.npz``, docs/data_contracts.md) the crop keeps its masks on the grid
and, for its HU, the box of the source CT the grid interpolates (its own voxels, int16, one
voxel beyond the crop where the image has one) when the box has fewer voxels than the grid:
the grid's HU are then recomputed at load by the same resampling, so the file is exact at a
fraction of the grid's size (a 96^3 grid over a CT of 2 x 2 x 5 mm voxels holds ~4 times as
many voxels as the box, and CT noise does not compress); otherwise the grid's HU themselves. :func:`load_roi` gives the windowed image in [0, 1], the same function of the HU
for every reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mtnet.errors import InputError
from mtnet.imaging import AIR_HU, IDENTITY, Grid, fraction_to_grid, resample_image, window

ROI_KEYS = ("hu", "hu_window", "tumor", "liver", "spacing_mm", "origin_mm", "bbox_ijk")
# on disk: the HU's source box instead of ``hu``; the direction is the source's and the grid's
STORED_KEYS = ("source_hu", "source_origin_mm", "source_spacing_mm", "direction", "hu_window",
               "tumor", "liver", "spacing_mm", "origin_mm", "bbox_ijk")


@dataclass
class Roi:
    hu: np.ndarray  # int16 (z, y, x): HU, rounded, nothing below air
    hu_window: np.ndarray  # (low, high) HU scaled to [0, 1] in ``image``
    tumor: np.ndarray  # uint8 (z, y, x)
    liver: np.ndarray  # uint8 (z, y, x)
    spacing_mm: np.ndarray  # (x, y, z)
    origin_mm: np.ndarray  # (x, y, z), physical centre of voxel (0, 0, 0)
    bbox_ijk: np.ndarray  # (i0, j0, k0, i1, j1, k1): the crop in the source grid, end exclusive
    # the CT box ``hu`` was interpolated from (None: ``hu`` itself, on the crop's grid)
    source: sitk.Image | None = field(default=None, repr=False, compare=False)

    @property
    def grid(self) -> Grid:
        direction = IDENTITY if self.source is None else self.source.GetDirection()
        return Grid(tuple(int(n) for n in self.hu.shape[::-1]), tuple(map(float, self.origin_mm)),
                    tuple(map(float, self.spacing_mm)), direction)

    @property
    def image(self) -> np.ndarray:
        """The network's input: float32 (z, y, x) in [0, 1], the HU windowed."""
        return window(self.hu, self.hu_window)

    def arrays(self) -> dict:
        return {key: getattr(self, key) for key in ROI_KEYS}


def grid_hu(source: sitk.Image, grid: Grid) -> np.ndarray:
    """The crop's HU: ``source`` interpolated linearly onto ``grid`` (outside the image: air),
    rounded to int16 — the one definition, for the crop as cut and as loaded."""
    hu = sitk.GetArrayFromImage(resample_image(source, grid))
    return np.clip(np.rint(hu), AIR_HU, np.iinfo(np.int16).max).astype(np.int16)


def save_roi(roi: Roi, path) -> None:
    """The crop as its source box, or on its own grid where that has fewer voxels (a thin-
    slice CT's box can hold many more than the grid)."""
    source = roi.source
    if source is None or np.prod(source.GetSize()) >= roi.hu.size:
        source = sitk.GetImageFromArray(roi.hu)
        source.SetOrigin(roi.grid.origin)
        source.SetSpacing(roi.grid.spacing)
        source.SetDirection(roi.grid.direction)
    voxels = sitk.GetArrayFromImage(source)
    if np.issubdtype(voxels.dtype, np.integer) or np.array_equal(voxels, np.rint(voxels)):
        if voxels.min() >= np.iinfo(np.int16).min and voxels.max() <= np.iinfo(np.int16).max:
            voxels = voxels.astype(np.int16)
    np.savez_compressed(
        path, source_hu=voxels, source_origin_mm=np.asarray(source.GetOrigin(), np.float64),
        source_spacing_mm=np.asarray(source.GetSpacing(), np.float64),
        direction=np.asarray(source.GetDirection(), np.float64),
        **{key: getattr(roi, key) for key in ROI_KEYS if key != "hu"})


def load_roi(path) -> Roi:
    """A crop written by the tumor stage (``roi/{pid}.npz``), its HU recomputed on the grid."""
    path = Path(path)
    if not path.exists():
        raise InputError("ROI crop not found", path=path, fix="run the tumor stage")
    with np.load(path) as npz:
        missing = [k for k in STORED_KEYS if k not in npz.files]
        if missing:
            raise InputError(f"ROI crop lacks {', '.join(missing)}", path=path,
                             fix="re-run the tumor stage (the crop's format changed)")
        arrays = {key: npz[key] for key in STORED_KEYS}
    source = sitk.GetImageFromArray(arrays.pop("source_hu"))
    source.SetOrigin(tuple(arrays.pop("source_origin_mm")))
    source.SetSpacing(tuple(arrays.pop("source_spacing_mm")))
    source.SetDirection(tuple(arrays.pop("direction")))
    shape = arrays["tumor"].shape
    grid = Grid(tuple(int(n) for n in shape[::-1]), tuple(map(float, arrays["origin_mm"])),
                tuple(map(float, arrays["spacing_mm"])), source.GetDirection())
    if Grid.of(source) == grid:  # a crop stored on its own grid
        hu = sitk.GetArrayFromImage(source).astype(np.int16)
    else:
        hu = grid_hu(source, grid)
    return Roi(hu=hu, source=source, **arrays)


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
    source = image[int(lo[0]):int(hi[0]), int(lo[1]):int(hi[1]), int(lo[2]):int(hi[2])]

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
        bbox_ijk=bbox, source=source,
    )
