"""Liver QC: volume with outlier flags, Dice and average surface distance, montage PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from mtnet import imaging

QC_COLUMNS = ["patient_id", "backend", "volume_ml", "volume_outlier", "dice", "asd_mm", "reference",
              # the backend's own mask, before the tumor join, and the tumor it leaves out
              "dice_backend", "tumor_outside_backend", "tumor_outside", "tumor_joined"]


def volume_ml(mask: np.ndarray, spacing_zyx) -> float:
    """Mask volume in mL: voxel count x voxel volume (mm^3) / 1000."""
    return float(np.count_nonzero(mask)) * float(np.prod(spacing_zyx)) / 1000.0


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice = 2|A n B| / (|A| + |B|); 1.0 when both are empty."""
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask, border_value=0)


def average_surface_distance(a: np.ndarray, b: np.ndarray, spacing_zyx) -> float:
    """Average symmetric surface distance (mm): the mean, over the surface voxels of both
    masks, of the distance to the other mask's surface (Heimann et al., IEEE TMI 2009).
    NaN when either mask is empty.

    Surface voxels (a mask voxel with a 6-neighbour outside the mask or the array) are
    taken in the masks' joint bounding box, one voxel wider (the same voxels as in the
    whole array), and the distances between them from a k-d tree of their positions in
    mm: the cost follows the surfaces, not the image.
    """
    from scipy.spatial import cKDTree

    a, b = a.astype(bool, copy=False), b.astype(bool, copy=False)
    if not a.any() or not b.any():
        return float("nan")
    if np.array_equal(a, b):
        return 0.0
    box = imaging.bounding_box(a | b, pad=1)
    scale = np.asarray(spacing_zyx, float)
    pa = np.argwhere(_surface(a[box])) * scale
    pb = np.argwhere(_surface(b[box])) * scale
    to_b = cKDTree(pb).query(pa, k=1)[0]
    to_a = cKDTree(pa).query(pb, k=1)[0]
    return float(np.concatenate([to_b, to_a]).mean())


def outside_fraction(tumor: np.ndarray, mask: np.ndarray) -> float:
    """Share of the tumor's voxels outside ``mask`` (NaN without a tumor)."""
    tumor = np.asarray(tumor, bool)
    total = int(tumor.sum())
    return float("nan") if total == 0 else float((tumor & ~np.asarray(mask, bool)).sum()) / total


def volume_outlier(volume: float, volume_range) -> bool:
    lo, hi = volume_range
    return bool(volume < lo or volume > hi)


def montage_panel(patient_id: str, image: np.ndarray, mask: np.ndarray,
                  reference: np.ndarray | None = None, label: str | None = None,
                  spacing_zyx=(1.0, 1.0, 1.0)) -> dict:
    """Axial and coronal slices through the mask's centroid; mask red, reference green."""
    mask = np.asarray(mask, bool)
    return imaging.montage_panel(label or patient_id, image, [(mask, "red"), (reference, "lime")],
                                 spacing_zyx, views=("axial", "coronal"), centre=mask)


def montage(panels: list[dict], path: str | Path, title: str, max_panels: int = 16) -> None:
    imaging.montage(panels[:max_panels], path, title, columns=4)
