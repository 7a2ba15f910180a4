"""Tumor measurements: lesion labelling, longest axial diameter (mRECIST), ring, inclusion."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from mtnet.imaging import label_components

def label_lesions(tumor: np.ndarray) -> tuple[np.ndarray, int]:
    """The lesions of a tumor mask: its 26-connected components (voxels touching at an edge
    or a corner belong to the same lesion), as (labels, count)."""
    return label_components(tumor, connectivity=26)


def _max_distance(points: np.ndarray) -> float:
    """Largest pairwise distance of 2D points (on the convex hull's vertices)."""
    if len(points) < 2:
        return 0.0
    if len(points) > 3:
        try:
            points = points[ConvexHull(points).vertices]
        except QhullError:  # collinear points: the extremes along the line
            pass
    if len(points) > 400:  # collinear fallback on a long line: project on the main axis
        centred = points - points.mean(axis=0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        proj = centred @ axis
        return float(proj.max() - proj.min())
    return float(pdist(points).max())


def longest_axial_diameter(mask: np.ndarray, spacing_zyx) -> float:
    """Longest in-plane (axial) diameter in mm of a lesion, over all its axial slices.

    Per slice, the largest distance between two voxel centres of the lesion (the maximum
    Feret diameter, via the convex hull), plus one in-plane voxel size so that a lesion of
    one voxel measures one voxel (the extent convention of a caliper on the image).
    mRECIST measures the viable tumor's longest axial diameter (Lencioni & Llovet 2010).
    """
    mask = mask.astype(bool)
    if not mask.any():
        return 0.0
    sy, sx = float(spacing_zyx[1]), float(spacing_zyx[2])
    best = 0.0
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        sl = mask[z]
        # boundary pixels suffice for the hull
        edge = sl & ~ndi.binary_erosion(sl)
        yy, xx = np.nonzero(edge)
        pts = np.column_stack([yy * sy, xx * sx])
        best = max(best, _max_distance(pts))
    return best + 0.5 * (sy + sx)


def lesion_table(labels: np.ndarray, n: int, spacing_zyx) -> list[dict]:
    """Per lesion: label, voxel count, volume (mL) and longest axial diameter (mm)."""
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    out = []
    for k, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        lesion = labels[box] == k
        out.append({
            "label": k,
            "voxels": int(lesion.sum()),
            "volume_ml": float(lesion.sum()) * voxel_ml,
            "diameter_mm": longest_axial_diameter(lesion, spacing_zyx),
        })
    return out


def pick_target(lesions: list[dict], rule: str) -> dict:
    """The target lesion: longest axial diameter (mRECIST) or largest volume; ties -> lower label."""
    key = {"longest_axial_diameter": "diameter_mm", "largest_volume": "volume_ml"}[rule]
    return max(lesions, key=lambda d: (d[key], -d["label"]))


def diameter_disagreement(measured: float, table: float, tolerance: float) -> float:
    """1 when |measured - table| / table > tolerance, 0 otherwise, NaN when the table lacks it."""
    if table is None or not np.isfinite(table) or table <= 0:
        return float("nan")
    return float(abs(measured - table) / table > tolerance)


def outside_fraction(tumor: np.ndarray, liver: np.ndarray) -> float:
    """Fraction of tumor voxels outside the liver mask."""
    tumor = tumor.astype(bool)
    n = tumor.sum()
    return float(np.logical_and(tumor, ~liver.astype(bool)).sum() / n) if n else float("nan")


def peritumoral_ring(tumor: np.ndarray, liver: np.ndarray, ring_mm: float, spacing_zyx) -> np.ndarray:
    """Voxels within ``ring_mm`` (Euclidean, in mm) of the tumor, outside it, inside the liver."""
    tumor = tumor.astype(bool)
    spacing = np.asarray(spacing_zyx, float)
    ring = np.zeros(tumor.shape, bool)
    if not tumor.any():
        return ring
    # work in the tumor's bounding box grown by the ring width (the EDT is the cost)
    pad = np.ceil(ring_mm / spacing).astype(int) + 1
    idx = np.nonzero(tumor)
    box = tuple(slice(max(0, i.min() - p), min(n, i.max() + p + 1))
                for i, p, n in zip(idx, pad, tumor.shape))
    dist = ndi.distance_transform_edt(~tumor[box], sampling=spacing)
    ring[box] = (dist > 0) & (dist <= ring_mm) & liver[box].astype(bool)
    return ring
