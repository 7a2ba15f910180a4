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
from mtnet.model.mtnet.variants import EXTRA, check_view, view_name
from mtnet.tumor.roi import load_roi

log = logging.getLogger(__name__)

ARRAYS = ("image", "tumor", "liver")


def _center_of(roi_dir: Path) -> str:
    # results/tumor/{center}/roi
    return roi_dir.parent.name if roi_dir.name == "roi" else roi_dir.name


def load_crops(roi_dirs, patient_ids, grid=None, view: str = EXTRA["view"],
               margin_mm: float = EXTRA["view_margin_mm"]) -> dict:
    """The crops of ``patient_ids`` (in that order) from the centers' ``roi/`` folders.

    Returns ``patient_id``, ``center`` and ``view`` (str arrays, (N,); the view as
    :func:`~mtnet.model.mtnet.variants.view_name` writes it), ``image`` float32
    (N, D, H, W) in [0, 1], ``tumor`` and ``liver`` uint8 (N, D, H, W). ``grid``
    ((D, H, W) or None): resampled on load with :func:`resample_crops`; without it every
    crop must already share one grid. ``view="tumor"`` (needs ``grid``): instead of the whole
    crop, the cube of :func:`tumor_view` (the lesion plus ``margin_mm`` on every side).
    A patient found in no folder, or in two, a crop
    of an older format (no HU) or an empty tumor mask is an
    :class:`~mtnet.errors.InputError` naming the patient and the file.
    """
    margin_mm = check_view(view, margin_mm)
    if view == "tumor" and grid is None:
        raise InputError("the tumor view needs a grid", fix="pass grid=")
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
        if view == "tumor":
            # the crop's spacing is (x, y, z); the arrays are (z, y, x)
            image, tumor, liver = tumor_view(image, tumor, liver, roi.spacing_mm[::-1], grid,
                                             margin_mm)
        elif grid is not None:
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
        "view": np.full(len(out["patient_id"]), view_name(view, margin_mm)),
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


def tumor_view(image: np.ndarray, tumor: np.ndarray, liver: np.ndarray, spacing_zyx, grid,
               margin_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One patient's crop arrays (D, H, W) seen through a cube centred on the tumor mask's
    bounding box: side = the box's longest physical extent + 2 ``margin_mm``, isotropic,
    sampled on ``grid`` (image trilinear, masks nearest; outside the crop the image is 0,
    the window's floor, and the masks are 0). Every tumor voxel lies inside the cube, so the
    lesion, its capsule and its peritumoral ring are seen at the grid's full resolution
    whatever the liver's size."""
    spacing = np.asarray(spacing_zyx, np.float64)
    grid = tuple(int(g) for g in grid)
    idx = np.argwhere(tumor > 0)
    lo, hi = idx.min(0), idx.max(0)
    centre = (lo + hi) / 2.0  # voxel-centre coordinates, (z, y, x)
    side = float(((hi - lo + 1) * spacing).max() + 2.0 * float(margin_mm))
    # the cube's voxel centres in source voxel coordinates, then grid_sample's [-1, 1]
    # (align_corners=False: -1 and 1 are the outer faces of the source's edge voxels)
    axes = []
    for a in range(3):
        offset_mm = ((np.arange(grid[a]) + 0.5) / grid[a] - 0.5) * side
        voxel = centre[a] + offset_mm / spacing[a]
        axes.append((2.0 * voxel + 1.0) / image.shape[a] - 1.0)
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    sample = torch.from_numpy(np.stack([xx, yy, zz], -1)[None].astype(np.float32))

    def warp(a, mode):
        x = torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None]
        return F.grid_sample(x, sample, mode=mode, padding_mode="zeros",
                             align_corners=False)[0, 0].numpy()

    out_tumor = warp(tumor, "nearest") > 0.5
    if not out_tumor.any():
        # a lesion smaller than one cube voxel: the voxel at its centre (the cube's)
        out_tumor[tuple((g - 1) // 2 for g in grid)] = True
        log.info("a tumor too small for the %s view kept as its centre voxel",
                 "x".join(map(str, grid)))
    return (warp(image, "bilinear").astype(np.float32), out_tumor.astype(np.uint8),
            (warp(liver, "nearest") > 0.5).astype(np.uint8))
