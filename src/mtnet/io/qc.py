"""Per-center ingestion QC: the table (qc.tsv) and a montage of mid-slices with mask outlines."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtnet.imaging import AIR_HU, montage_panel
from mtnet.imaging import montage as render_montage

QC_COLUMNS = [
    "patient_id", "source", "series_number", "series_description", "pick_reason",
    "shape_before", "spacing_before_mm", "shape", "spacing_mm", "hu_p1", "hu_p50", "hu_p99",
    "slices", "dropped_slices", "tumor_voxels", "liver_mask", "kvp", "kernel", "warnings",
    # plausibility (src/mtnet/io/plausibility.py): measures, the orientation's verdict, the
    # checks that warned ("ok": none), the label values found in the delivered masks
    "air_fraction", "soft_tissue_hu", "orientation", "checks", "tumor_labels", "liver_labels",
]


def hu_percentiles(array: np.ndarray, q=(1, 50, 99)) -> list[float]:
    """HU percentiles inside the field of view (voxels above air)."""
    inside = array[array > AIR_HU]
    if inside.size == 0:
        return [float("nan")] * len(q)
    return [float(v) for v in np.percentile(inside, q)]


def qc_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=QC_COLUMNS)


def panel(pid: str, image: np.ndarray, tumor: np.ndarray | None, liver: np.ndarray | None,
          spacing_zyx) -> dict:
    """The montage panel of one patient: the axial slice through the tumor's centre (else the
    middle slice), tumor outlined red, the center's own liver mask cyan."""
    return montage_panel(pid, image, [(liver, "cyan"), (tumor, "red")], spacing_zyx,
                         centre=tumor)


def montage(panels: list[dict], path, title: str, max_panels: int = 60) -> None:
    render_montage(panels[:max_panels], path, title)
