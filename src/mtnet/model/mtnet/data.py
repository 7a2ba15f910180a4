"""MTnet's inputs: the tumor stage's crops (``roi/{pid}.npz``, docs/data_contracts.md), put
on a size preset's grid, and the k-fold assignment of the training patients."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mtnet.errors import InputError
from mtnet.tumor.roi import load_roi

log = logging.getLogger(__name__)

ARRAYS = ("image", "tumor", "liver")


def _center_of(roi_dir: Path) -> str:
    # results/tumor/{center}/roi
    return roi_dir.parent.name if roi_dir.name == "roi" else roi_dir.name


def load_crops(roi_dirs, patient_ids, grid=None) -> dict:
    """The crops of ``patient_ids`` (in that order) from the centers' ``roi/`` folders.

    Returns ``patient_id`` and ``center`` (str arrays, (N,)), ``image`` float32
    (N, D, H, W) in [0, 1], ``tumor`` and ``liver`` uint8 (N, D, H, W). ``grid``
    ((D, H, W) or None): resampled on load with :func:`resample_crops`; without it every
    crop must already share one grid. A patient found in no folder, or in two, a crop
    of an older format (no HU) or an empty tumor mask is an
    :class:`~mtnet.errors.InputError` naming the patient and the file.
    """
    roi_dirs = [Path(d) for d in roi_dirs]
    found: dict[str, list[Path]] = {}
    for d in roi_dirs:
        if not d.is_dir():
            raise InputError("roi folder not found", path=d, fix="run the tumor stage for this center")
    out = {k: [] for k in ("patient_id", "center", *ARRAYS)}
    for pid in patient_ids:
        pid = str(pid)
        found[pid] = [d for d in roi_dirs if (d / f"{pid}.npz").exists()]
        if not found[pid]:
            raise InputError("no roi crop for this patient", patient=pid,
                             path=", ".join(str(d) for d in roi_dirs),
                             fix="run the tumor stage, or leave the patient out")
        if len(found[pid]) > 1:
            raise InputError("patient id found in more than one center's roi folder",
                             patient=pid, path=", ".join(str(d) for d in found[pid]),
                             fix="make patient ids unique across centers")
        path = found[pid][0] / f"{pid}.npz"
        center = _center_of(found[pid][0])
        roi = load_roi(path)  # the one reader of the crops: int16 HU windowed to [0, 1]
        image = roi.image.astype(np.float32)
        tumor, liver = roi.tumor.astype(np.uint8), roi.liver.astype(np.uint8)
        if image.ndim != 3 or tumor.shape != image.shape or liver.shape != image.shape:
            raise InputError(f"crop arrays disagree in shape (image {image.shape}, tumor "
                             f"{tumor.shape}, liver {liver.shape})", center=center, patient=pid,
                             path=path, fix="re-run the tumor stage")
        if not tumor.any():
            raise InputError("crop's tumor mask is empty", center=center, patient=pid, path=path,
                             fix="check the tumor mask of this patient")
        if grid is not None:
            one = resample_crops({"image": image[None], "tumor": tumor[None],
                                  "liver": liver[None]}, grid)
            image, tumor, liver = one["image"][0], one["tumor"][0], one["liver"][0]
        out["patient_id"].append(pid)
        out["center"].append(center)
        for k, v in zip(ARRAYS, (image, tumor, liver)):
            out[k].append(v)
    shapes = {a.shape for a in out["image"]}
    if len(shapes) > 1:
        raise InputError(f"crops come on several grids {sorted(shapes)}",
                         path=", ".join(map(str, roi_dirs)),
                         fix="pass grid= to resample them on load")
    return {
        "patient_id": np.array(out["patient_id"], dtype=str),
        "center": np.array(out["center"], dtype=str),
        **{k: (np.stack(out[k]) if out[k] else np.empty((0, 0, 0, 0), np.float32)) for k in ARRAYS},
    }


def resample_crops(crops: dict, grid) -> dict:
    """Crops on the grid ``(D, H, W)``: the image by trilinear interpolation (torch,
    ``align_corners=False``: the crop's box is kept), masks by nearest neighbour; a tumor
    that nearest neighbour would lose keeps every voxel its area fraction touches (as the
    tumor stage does when it crops). Other keys are passed through."""
    grid = tuple(int(g) for g in grid)
    image = crops["image"]
    if tuple(image.shape[1:]) == grid:
        return dict(crops)
    out = dict(crops)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[:, None]
    out["image"] = F.interpolate(x, size=grid, mode="trilinear", align_corners=False)[:, 0].numpy()
    for key in ("tumor", "liver"):
        if key not in crops:
            continue
        m = torch.from_numpy(np.ascontiguousarray(crops[key], dtype=np.float32))[:, None]
        near = F.interpolate(m, size=grid, mode="nearest")[:, 0] > 0.5
        lost = ~near.flatten(1).any(1) & m.flatten(1).any(1)
        if lost.any():
            area = F.interpolate(m[lost], size=grid, mode="area")[:, 0] > 0
            near[lost] = area
            log.info("%d %s mask(s) too small for the %s grid kept by area", int(lost.sum()),
                     key, "x".join(map(str, grid)))
        out[key] = near.numpy().astype(np.uint8)
    return out
