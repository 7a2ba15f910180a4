"""Per-center ingestion QC: the table (qc.tsv) and a montage of mid-slices with mask outlines."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

QC_COLUMNS = [
    "patient_id", "source", "series_number", "series_description", "pick_reason",
    "shape_before", "spacing_before_mm", "shape", "spacing_mm", "hu_p1", "hu_p50", "hu_p99",
    "slices", "dropped_slices", "tumor_voxels", "liver_mask", "kvp", "kernel", "warnings",
]
WINDOW = (-100, 240)


def hu_percentiles(array: np.ndarray, q=(1, 50, 99)) -> list[float]:
    """HU percentiles inside the field of view (voxels above -1024)."""
    inside = array[array > -1024]
    if inside.size == 0:
        return [float("nan")] * len(q)
    return [float(v) for v in np.percentile(inside, q)]


def qc_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=QC_COLUMNS)


def mid_slice(image: np.ndarray, mask: np.ndarray | None) -> int:
    """Axial slice through the tumor's centre of mass, else the middle slice."""
    if mask is not None and mask.any():
        return int(round(np.nonzero(mask)[0].mean()))
    return image.shape[0] // 2


def panel(pid: str, image: np.ndarray, tumor: np.ndarray | None, liver: np.ndarray | None) -> tuple:
    """The montage panel of one patient: its mid-slice (z, y, x arrays in, 2D out)."""
    k = mid_slice(image, tumor)
    return (pid, k, image[k].copy(), None if tumor is None else tumor[k].copy(),
            None if liver is None else liver[k].copy())


def montage(panels: list[tuple], path, title: str, max_panels: int = 60) -> None:
    """A grid of axial slices (window -100..240 HU) with tumor (red) and liver (cyan) outlines.

    ``panels``: from :func:`panel`, in display order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = panels[:max_panels]
    n = max(1, len(panels))
    cols = min(6, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (pid, k, image, tumor, liver) in zip(axes.ravel(), panels):
        ax.imshow(image, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], interpolation="nearest")
        for mask, color in ((liver, "cyan"), (tumor, "red")):
            if mask is not None and mask.any() and not mask.all():
                ax.contour(mask, levels=[0.5], colors=color, linewidths=0.6)
        ax.set_title(f"{pid} z={k}", fontsize=7)
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no patient ingested", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
