"""Liver QC: volume with outlier flags, Dice and average surface distance, montage PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

QC_COLUMNS = ["patient_id", "backend", "volume_ml", "volume_outlier", "dice", "asd_mm", "reference"]


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
    NaN when either mask is empty."""
    a, b = a.astype(bool), b.astype(bool)
    if not a.any() or not b.any():
        return float("nan")
    sa, sb = _surface(a), _surface(b)
    to_b = ndi.distance_transform_edt(~sb, sampling=spacing_zyx)
    to_a = ndi.distance_transform_edt(~sa, sampling=spacing_zyx)
    d = np.concatenate([to_b[sa], to_a[sb]])
    return float(d.mean())


def volume_outlier(volume: float, volume_range) -> bool:
    lo, hi = volume_range
    return bool(volume < lo or volume > hi)


def montage_panel(patient_id: str, image: np.ndarray, mask: np.ndarray,
                  reference: np.ndarray | None = None, label: str | None = None,
                  spacing_zyx=(1.0, 1.0, 1.0)) -> dict:
    """The two views of one patient (axial and coronal slices through the mask's centroid),
    kept small so a center's montage never holds whole volumes."""
    mask = mask.astype(bool)
    if mask.any():
        z, y, _ = (int(round(v)) for v in ndi.center_of_mass(mask))
    else:
        z, y = image.shape[0] // 2, image.shape[1] // 2

    def views(arr):
        if arr is None:
            return None, None
        return np.array(arr[z]), np.array(arr[:, y][::-1])

    sz, sy, sx = (float(v) for v in spacing_zyx)
    return {"patient_id": patient_id, "label": label or patient_id, "image": views(image),
            "mask": views(mask), "reference": views(reference), "aspect": (sy / sx, sz / sx)}


def montage(panels: list[dict], path: str | Path, title: str, max_panels: int = 16) -> None:
    """Axial and coronal views per patient (:func:`montage_panel`); mask outlines red,
    reference green."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = panels[:max_panels]
    n = max(1, len(panels))
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(4.0 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        for k in range(2):
            ax = axes[r, 2 * c + k]
            img, m, rf = p["image"][k], p["mask"][k], p["reference"][k]
            ax.imshow(img, cmap="gray", vmin=-160, vmax=240, interpolation="nearest",
                      aspect=p.get("aspect", (1.0, 1.0))[k])
            if m.any():
                ax.contour(m, levels=[0.5], colors="red", linewidths=0.7)
            if rf is not None and rf.any():
                ax.contour(rf, levels=[0.5], colors="lime", linewidths=0.7)
        axes[r, 2 * c].set_title(p["label"], fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
