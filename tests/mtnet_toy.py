"""Toy crops for MTnet's tests: a textured liver box with one dark tumor; in the patients
with the outcome, a bright blob (the learnable image signal). Crops are in the tumor
stage's form (``image`` float32 in [0, 1], ``tumor``/``liver`` uint8, (z, y, x))."""

from __future__ import annotations

import numpy as np

from mtnet.tumor.roi import Roi, save_roi

TOY_WINDOW_HU = (-160.0, 240.0)


def _ball(shape, centre, radius):
    zz, yy, xx = np.indices(shape)
    return ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) <= radius ** 2


def toy_crop(g: np.random.Generator, grid: int = 32, blob: bool = False,
             heterogeneity: float = 0.0, blob_size: float = 0.2) -> dict:
    """One crop. ``heterogeneity``: SD of the blocky texture inside the tumor (0: flat)."""
    shape = (grid,) * 3
    image = 0.55 + 0.04 * g.standard_normal(shape)
    liver = np.ones(shape, dtype=bool)
    r = grid * g.uniform(0.18, 0.25)
    centre = g.uniform(r + 2, grid - r - 2, size=3)
    tumor = _ball(shape, centre, r)
    inside = 0.35 + 0.02 * g.standard_normal(shape)
    if heterogeneity > 0:
        blocks = g.standard_normal((grid // 4,) * 3)
        texture = np.kron(blocks, np.ones((4, 4, 4)))[:grid, :grid, :grid]
        inside = inside + heterogeneity * texture
    image = np.where(tumor, inside, image)
    if blob:
        rb = grid * blob_size
        c = g.uniform(rb + 1, grid - rb - 1, size=3)
        image = np.where(_ball(shape, c, rb), 0.95, image)
    return {"image": np.clip(image, 0, 1).astype(np.float32), "tumor": tumor.astype(np.uint8),
            "liver": liver.astype(np.uint8)}


def toy_cohort(n: int, seed: int, grid: int = 32, prevalence: float = 0.4, n_factors: int = 4,
               centers=("TA", "TB")) -> dict:
    """``crops`` (load_crops' form), ``clinical`` (N, F) whose first column carries the
    outcome, ``names``, ``y``, ``strata``."""
    g = np.random.default_rng(seed)
    y = (g.random(n) < prevalence).astype(int)
    y[:2] = [0, 1]  # both classes, always
    crops = [toy_crop(g, grid, blob=bool(v)) for v in y]
    clinical = g.standard_normal((n, n_factors))
    clinical[:, 0] += 1.5 * y
    strata = np.array([centers[i % len(centers)] for i in range(n)])
    return {
        "crops": {"patient_id": np.array([f"{strata[i]}-{i:04d}" for i in range(n)]),
                  "center": strata,
                  **{k: np.stack([c[k] for c in crops]) for k in ("image", "tumor", "liver")}},
        "clinical": clinical, "names": [f"f{j}" for j in range(n_factors)], "y": y,
        "strata": strata,
    }


def write_roi(folder, crops: dict) -> None:
    """Crops as the tumor stage writes them (``{folder}/{pid}.npz`` by save_roi): the toy's
    [0, 1] image stored as the int16 HU that window back to it."""
    folder.mkdir(parents=True, exist_ok=True)
    low, high = TOY_WINDOW_HU
    for i, pid in enumerate(crops["patient_id"]):
        hu = np.rint(low + crops["image"][i] * (high - low)).astype(np.int16)
        save_roi(Roi(hu=hu, hu_window=np.array(TOY_WINDOW_HU, float), tumor=crops["tumor"][i],
                     liver=crops["liver"][i], spacing_mm=np.array([2.0, 2.0, 2.0]),
                     origin_mm=np.zeros(3), bbox_ijk=np.zeros(6, dtype=np.int64)),
                 folder / f"{pid}.npz")
