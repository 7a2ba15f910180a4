"""The ingest grid: identity direction (LPS), configured spacing, HU int16 / mask uint8.

The output grid covers the physical bounding box of the input's voxel centres: with the
eight corner centres p_c = O + D · diag(s) · i_c, origin = min_c p_c, and
size_a = floor((max_c p_c,a - min_c p_c,a) / spacing_a) + 1 along each axis a (x, y, z).
Images are resampled with linear interpolation (outside the field of view: -1024 HU),
masks with nearest neighbour (outside: 0), so a mask lands on exactly its image's grid.
"""

from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

AIR_HU = -1024
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def output_grid(image: sitk.Image, spacing_xyz) -> sitk.Image:
    """An empty reference image with identity direction covering ``image``."""
    size = np.array(image.GetSize())
    corners = np.array(
        [image.TransformContinuousIndexToPhysicalPoint([float(c) for c in idx])
         for idx in itertools.product(*[(0, n - 1) for n in size])]
    )
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    spacing = np.asarray(spacing_xyz, dtype=float)
    out_size = np.floor((hi - lo) / spacing + 1e-4).astype(int) + 1
    ref = sitk.Image([int(v) for v in out_size], sitk.sitkUInt8)
    ref.SetSpacing([float(v) for v in spacing])
    ref.SetOrigin([float(v) for v in lo])
    ref.SetDirection(IDENTITY)
    return ref


def resample_image(image: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Linear resampling onto ``reference``; HU rounded to int16, -1024 outside the FOV."""
    out = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, float(AIR_HU), sitk.sitkFloat32)
    arr = np.rint(sitk.GetArrayFromImage(out))
    arr = np.clip(arr, AIR_HU, np.iinfo(np.int16).max).astype(np.int16)
    res = sitk.GetImageFromArray(arr)
    res.CopyInformation(reference)
    return res


def resample_mask(mask: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Nearest-neighbour resampling of a binary mask onto ``reference`` (uint8 0/1)."""
    mask = sitk.Cast(mask > 0, sitk.sitkUInt8)
    out = sitk.Resample(mask, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return out


def same_geometry(a: sitk.Image, b: sitk.Image, tol_mm: float = 1e-3) -> str | None:
    """None when ``a`` and ``b`` share size, spacing, origin and direction, else what differs."""
    if a.GetSize() != b.GetSize():
        return f"size {a.GetSize()} vs {b.GetSize()}"
    if not np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol_mm):
        return f"spacing {tuple(np.round(a.GetSpacing(), 4))} vs {tuple(np.round(b.GetSpacing(), 4))}"
    if not np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-4):
        return "direction differs"
    # origin tolerance scales with the voxel size (rounding in NIfTI headers)
    if not np.allclose(a.GetOrigin(), b.GetOrigin(), atol=max(tol_mm, 0.01 * min(a.GetSpacing()))):
        return f"origin {tuple(np.round(a.GetOrigin(), 3))} vs {tuple(np.round(b.GetOrigin(), 3))}"
    return None


def same_voxel_centres(a: sitk.Image, b: sitk.Image, tol_voxel: float = 0.01) -> bool:
    """True when ``b``'s voxel centres are exactly ``a``'s, up to axis order and flips (e.g. the
    same grid stored RAS by one tool and LPS by another): a's corner voxels land on b's corner
    voxels, within ``tol_voxel`` of a voxel."""
    if sorted(a.GetSize()) != sorted(b.GetSize()):
        return False
    corners_b = set()
    for idx in itertools.product(*[(0, n - 1) for n in a.GetSize()]):
        point = a.TransformIndexToPhysicalPoint([int(i) for i in idx])
        cont = np.array(b.TransformPhysicalPointToContinuousIndex(point))
        if np.abs(cont - np.rint(cont)).max() > tol_voxel:
            return False
        corners_b.add(tuple(int(v) for v in np.rint(cont)))
    expected = set(itertools.product(*[(0, n - 1) for n in b.GetSize()]))
    return corners_b == expected
