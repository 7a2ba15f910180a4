"""Liver UNet backend: a MONAI 3D UNet trained inside the workflow, CPU-friendly.

Trained on every center that has its own liver masks (rule ``train_liver_unet``), applied
to the others. Images are resampled to an isotropic working spacing (``spacing_mm``,
default 3 mm), HU clipped to ``hu_window`` and scaled to [0, 1]; training samples random
cubic crops (``crop`` voxels; half of them centred on the liver), loss Dice + cross-entropy
(MONAI ``DiceCELoss``), Adam with the polynomial learning-rate decay of nnU-Net
(:func:`poly_lr`). Inference: sliding windows (MONAI ``sliding_window_inference``), the
liver probability resampled linearly onto the input grid, thresholded at 0.5, its largest
connected component kept and holes filled. A held-out part of the patients of every
source center (``heldout_fraction``) is never trained on; its Dice per patient is written
next to the model.

Deterministic: the split, the crops and the weights derive from the config's seed
(:func:`mtnet.seeds.derive_seed`); torch runs with deterministic algorithms.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage as ndi

from mtnet import imaging
from mtnet.config import section
from mtnet.errors import InputError
from mtnet.imaging import NIFTI, patient_ids, read_mask
from mtnet.liver import qc
from mtnet.seeds import derive_seed, rng
from mtnet.tables import write_tsv

log = logging.getLogger(__name__)

HELDOUT_COLUMNS = ["center", "patient_id", "dice", "volume_ml", "reference_volume_ml"]


# --------------------------------------------------------------------------- data


def preprocess(image: sitk.Image, spacing_mm: float, hu_window) -> tuple[np.ndarray, sitk.Image]:
    """(array in [0, 1] on the working grid, that grid as an image)."""
    oriented = imaging.reorient(image)
    work = imaging.resample_image(oriented, imaging.spacing_grid(oriented, spacing_mm))
    return imaging.window(sitk.GetArrayFromImage(work), hu_window), work


def mask_on(mask: sitk.Image, grid: sitk.Image) -> np.ndarray:
    """A mask on another grid: linear interpolation of 0/1, thresholded at 0.5."""
    return imaging.threshold_to_grid(mask, grid).astype(np.uint8)


def collect_cases(images: list, masks: list) -> list[dict]:
    """Every (center, patient) with an image and a liver mask, from per-center folders."""
    cases = []
    for image_dir, mask_dir in zip(images, masks):
        image_dir, mask_dir = Path(image_dir), Path(mask_dir)
        center = image_dir.parent.name
        for pid in patient_ids(image_dir):
            path = mask_dir / f"{pid}{NIFTI}"
            if path.exists():
                cases.append({"center": center, "patient_id": pid,
                              "image": image_dir / f"{pid}{NIFTI}", "mask": path})
    return cases


def split_cases(cases: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Held-out patients per center: round(fraction x n), at least one where a center has
    two or more patients; the draw is seeded per center (adding a center shifts no other)."""
    train, heldout = [], []
    for center in sorted({c["center"] for c in cases}):
        members = sorted((c for c in cases if c["center"] == center), key=lambda c: c["patient_id"])
        k = 0 if len(members) < 2 else min(len(members) - 1, max(1, round(fraction * len(members))))
        order = rng(seed, "liver-unet", "split", center).permutation(len(members))
        held = set(order[:k].tolist())
        for i, case in enumerate(members):
            (heldout if i in held else train).append(case)
    return train, heldout


def random_crop(image: np.ndarray, mask: np.ndarray, size: int, generator: np.random.Generator,
                foreground_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A cubic crop of ``size`` voxels (zero-padded where the volume is smaller), centred on
    a random liver voxel with probability ``foreground_fraction``, else anywhere."""
    pad = [(max(0, size - n) // 2, max(0, size - n) - max(0, size - n) // 2) for n in image.shape]
    image, mask = np.pad(image, pad), np.pad(mask, pad)
    fg = np.flatnonzero(mask) if generator.random() < foreground_fraction else np.empty(0)
    if fg.size:
        centre = np.unravel_index(fg[generator.integers(fg.size)], mask.shape)
        start = [int(np.clip(c - size // 2, 0, n - size)) for c, n in zip(centre, mask.shape)]
    else:
        start = [int(generator.integers(0, n - size + 1)) for n in mask.shape]
    sl = tuple(slice(s, s + size) for s in start)
    return image[sl], mask[sl]


# --------------------------------------------------------------------------- model


def poly_lr(epoch: int, epochs: int, power: float = 0.9) -> float:
    """Learning-rate factor of the polynomial decay (1 - epoch / epochs) ** power, as in
    nnU-Net (Isensee et al., Nat Methods 2021)."""
    return max(0.0, 1.0 - epoch / max(1, epochs)) ** power


def build_model(channels):
    from monai.networks.nets import UNet

    channels = tuple(int(c) for c in channels)
    return UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=1, norm="instance")


@contextlib.contextmanager
def deterministic_torch(seed: int, threads: int):
    import torch

    previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(max(1, int(threads)))
    torch.manual_seed(seed)
    try:
        yield torch
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


def train(images: list, masks: list, model_path, heldout_path, settings: dict, seed: int,
          threads: int = 1) -> pd.DataFrame:
    """Train the liver UNet; write the model and the held-out Dice per patient."""
    cfg = section("liver", {"unet": dict(settings or {})})["unet"]
    cases = collect_cases(images, masks)
    if len(cases) < 2:
        raise InputError(
            f"the liver UNet needs at least 2 patients with liver masks, found {len(cases)}",
            path=", ".join(map(str, masks)) or None,
            fix="give a training center liver masks, or use the classical backend",
        )
    train_cases, heldout_cases = split_cases(cases, cfg["heldout_fraction"], seed)
    log.info("liver UNet: %d training and %d held-out patients", len(train_cases), len(heldout_cases))
    data = []
    for case in train_cases:
        image = sitk.ReadImage(str(case["image"]))
        mask = read_mask(case["mask"], image, what="liver", center=case["center"],
                         patient=case["patient_id"])
        arr, grid = preprocess(image, cfg["spacing_mm"], cfg["hu_window"])
        data.append((arr, mask_on(mask, grid)))

    with deterministic_torch(derive_seed(seed, "liver-unet", "weights"), threads) as torch:
        from monai.losses import DiceCELoss

        model = build_model(cfg["channels"])
        loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["learning_rate"]))
        epochs = int(cfg["epochs"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: poly_lr(e, epochs))
        generator = rng(seed, "liver-unet", "crops")
        size, batch = int(cfg["crop"]), int(cfg["batch_size"])
        steps = max(1, math.ceil(len(data) / batch))
        start = time.perf_counter()
        model.train()
        for epoch in range(epochs):
            order = generator.permutation(len(data))
            losses = []
            for step in range(steps):
                picks = [order[(step * batch + b) % len(data)] for b in range(batch)]
                crops = [random_crop(*data[i], size, generator, cfg["foreground_fraction"]) for i in picks]
                scale = generator.uniform(0.9, 1.1, size=batch)
                shift = generator.uniform(-0.05, 0.05, size=batch)
                x = np.stack([c[0] * s + o for c, s, o in zip(crops, scale, shift)])[:, None]
                y = np.stack([c[1] for c in crops])[:, None]
                optimizer.zero_grad()
                loss = loss_fn(model(torch.from_numpy(x.astype(np.float32))),
                               torch.from_numpy(y.astype(np.int64)))
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            scheduler.step()
            log.info("epoch %d/%d: loss %.4f (%.0f s)", epoch + 1, epochs,
                     float(np.mean(losses)), time.perf_counter() - start)
        model.eval()
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    payload = {
        "state_dict": state,
        "config": {k: cfg[k] for k in ("spacing_mm", "crop", "channels", "hu_window")},
        "train_patients": [f"{c['center']}/{c['patient_id']}" for c in train_cases],
        "heldout_patients": [f"{c['center']}/{c['patient_id']}" for c in heldout_cases],
        "seed": int(seed),
    }
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
    import torch

    torch.save(payload, model_path)

    model = load(model_path, threads=threads)
    rows = []
    for case in heldout_cases:
        image = sitk.ReadImage(str(case["image"]))
        ref = sitk.GetArrayFromImage(read_mask(case["mask"], image, what="liver",
                                               center=case["center"], patient=case["patient_id"]))
        pred = sitk.GetArrayFromImage(predict(model, image)).astype(bool)
        spacing = image.GetSpacing()[::-1]
        rows.append({"center": case["center"], "patient_id": case["patient_id"],
                     "dice": round(qc.dice(pred, ref), 4),
                     "volume_ml": round(qc.volume_ml(pred, spacing), 1),
                     "reference_volume_ml": round(qc.volume_ml(ref.astype(bool), spacing), 1)})
    table = pd.DataFrame(rows, columns=HELDOUT_COLUMNS)
    write_tsv(table, heldout_path)
    if len(table):
        log.info("liver UNet held-out Dice: mean %.3f, min %.3f", table["dice"].mean(), table["dice"].min())
    return table


# --------------------------------------------------------------------------- inference


class LoadedModel:
    def __init__(self, network, config: dict, threads: int):
        self.network, self.config, self.threads = network, config, threads


def load(model_path, threads: int = 1) -> LoadedModel:
    import torch

    payload = torch.load(model_path, map_location="cpu", weights_only=True)
    network = build_model(payload["config"]["channels"])
    network.load_state_dict(payload["state_dict"])
    network.eval()
    return LoadedModel(network, payload["config"], threads)


def predict(model: LoadedModel, image: sitk.Image) -> sitk.Image:
    """Liver mask (uint8) on the grid of ``image``."""
    import torch
    from monai.inferers import sliding_window_inference

    cfg = model.config
    arr, grid = preprocess(image, cfg["spacing_mm"], cfg["hu_window"])
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(model.threads)))
    try:
        with torch.no_grad():
            logits = sliding_window_inference(
                torch.from_numpy(arr)[None, None], roi_size=(int(cfg["crop"]),) * 3,
                sw_batch_size=1, predictor=model.network, overlap=0.25, mode="gaussian")
            prob = torch.softmax(logits, dim=1)[0, 1].numpy()
    finally:
        torch.set_num_threads(previous)
    return postprocess(probability_on(prob, grid, image), image)


def probability_on(prob: np.ndarray, grid: sitk.Image, image: sitk.Image) -> np.ndarray:
    """The liver probability of the working grid, linearly resampled onto ``image``'s grid."""
    coarse = sitk.GetImageFromArray(prob.astype(np.float32))
    coarse.CopyInformation(grid)
    return imaging.fraction_to_grid(coarse, image)


def postprocess(prob: np.ndarray, like: sitk.Image) -> sitk.Image:
    """Probability >= 0.5, its largest connected component, holes filled; uint8 on ``like``."""
    mask = ndi.binary_fill_holes(imaging.largest_component(prob >= 0.5))
    return imaging.array_image(mask, like)
