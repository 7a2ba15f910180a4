"""Liver UNet backend: a MONAI 3D UNet trained inside the workflow, CPU-friendly.

Trained on every center that has its own liver masks (rule ``train_liver_unet``), applied
to the others. Images are resampled to an isotropic working spacing (``spacing_mm``,
default 3 mm), HU clipped to ``hu_window`` and scaled to [0, 1]; training samples random
cubic crops (``crop`` voxels; half of them centred on the liver), loss Dice + cross-entropy
(MONAI ``DiceCELoss``), Adam with the polynomial learning-rate decay of nnU-Net
(:func:`poly_lr`), through the project's trainer (:func:`mtnet.trainer.fit`: the
volumes resident on the training device, crops and intensity jitter drawn there from one
seeded ``torch.Generator``). Inference: sliding windows (MONAI ``sliding_window_inference``), the
liver probability resampled linearly onto the input grid, thresholded at 0.5, its largest
connected component kept and holes filled. A held-out part of the patients of every
source center (``heldout_fraction``) is never trained on; its Dice per patient is written
next to the model.

Deterministic: the split, the crops and the weights derive from the config's seed
(:func:`mtnet.seeds.derive_seed`); on the CPU torch runs with deterministic algorithms.
"""

from __future__ import annotations

import logging
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
from mtnet.trainer import AugmentConfig, Schedule, TrainConfig, fit, hard_dice
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


class CropTask:
    """The liver UNet's :class:`~mtnet.trainer.TrainingTask`: the working-grid volumes
    resident on the device (zero-padded once to at least ``size`` per axis); each batch is
    one cubic crop of ``size`` voxels per picked case, centred on a random liver voxel with
    probability ``foreground_fraction`` (else anywhere), then intensity-jittered
    (``x * U(0.9, 1.1) + U(-0.05, 0.05)``); loss Dice + cross-entropy."""

    def __init__(self, data: list[tuple[np.ndarray, np.ndarray]], size: int,
                 foreground_fraction: float):
        from monai.losses import DiceCELoss

        from mtnet.trainer import Augmentation

        self.data, self.size, self.fg_fraction = data, int(size), float(foreground_fraction)
        self.n_train = len(data)
        self.augment = Augmentation(AugmentConfig(spatial=False, intensity_scale=0.1,
                                                  intensity_shift=0.05, noise_std=0.0))
        self.loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)

    def to(self, device) -> None:
        import torch

        self.images, self.masks, self.fg = [], [], []
        for image, mask in self.data:
            pad = [(max(0, self.size - n) // 2, max(0, self.size - n) - max(0, self.size - n) // 2)
                   for n in image.shape]
            image, mask = np.pad(image, pad), np.pad(mask, pad)
            self.images.append(torch.from_numpy(np.ascontiguousarray(image, np.float32)).to(device))
            self.masks.append(torch.from_numpy(np.ascontiguousarray(mask, np.int64)).to(device))
            self.fg.append(torch.nonzero(self.masks[-1].flatten()).squeeze(1))

    def _crop(self, i: int, generator):
        import torch

        image, mask, fg = self.images[i], self.masks[i], self.fg[i]
        dev, size = image.device, self.size
        if float(torch.rand(1, generator=generator, device=dev)) < self.fg_fraction and fg.numel():
            flat = int(fg[torch.randint(fg.numel(), (1,), generator=generator, device=dev)])
            centre = np.unravel_index(flat, tuple(mask.shape))
            start = [int(np.clip(c - size // 2, 0, n - size)) for c, n in zip(centre, mask.shape)]
        else:
            start = [int(torch.randint(0, n - size + 1, (1,), generator=generator, device=dev))
                     for n in mask.shape]
        sl = tuple(slice(a, a + size) for a in start)
        return image[sl], mask[sl]

    def train_batch(self, index, generator) -> dict:
        import torch

        crops = [self._crop(i, generator) for i in index.tolist()]
        x = torch.stack([c[0] for c in crops])[:, None]
        y = torch.stack([c[1] for c in crops])[:, None]
        x, _ = self.augment(x, [], generator)
        return {"image": x, "mask": y}

    def loss(self, model, batch):
        logits = model(batch["image"]).float()
        loss = self.loss_fn(logits, batch["mask"])
        return loss, {"seg_loss": loss, "seg_dice": hard_dice(logits.detach(), batch["mask"])}

    def evaluate(self, model) -> dict:
        return {}  # no inner split: a fixed number of epochs, the last weights kept


# --------------------------------------------------------------------------- model


def poly_lr(epoch: int, epochs: int, power: float = 0.9) -> float:
    """Learning-rate factor of the polynomial decay (1 - epoch / epochs) ** power, as in
    nnU-Net (Isensee et al., Nat Methods 2021)."""
    return Schedule("poly", epochs, power=power)(epoch)


def build_model(channels):
    from monai.networks.nets import UNet

    channels = tuple(int(c) for c in channels)
    return UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=1, norm="instance")


def train(images: list, masks: list, model_path, heldout_path, settings: dict, seed: int,
          threads: int = 1, device: str = "cpu", workdir=None) -> pd.DataFrame:
    """Train the liver UNet; write the model and the held-out Dice per patient.

    ``device``: ``cpu``, ``cuda`` or ``auto``; ``workdir``: where the trainer keeps its
    per-epoch checkpoint and log (none by default)."""
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

    import torch

    epochs = int(cfg["epochs"])
    # Adam = AdamW without weight decay; the trainer's batches wrap around like before
    training = TrainConfig(epochs=epochs, batch_size=int(cfg["batch_size"]),
                           learning_rate=float(cfg["learning_rate"]), weight_decay=0.0,
                           schedule="poly", poly_power=0.9, patience=0, min_epochs=0,
                           threads=threads, augment=AugmentConfig(enabled=False))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "liver-unet", "weights"))
        model = build_model(cfg["channels"])
    task = CropTask(data, int(cfg["crop"]), cfg["foreground_fraction"])
    fit(model, task, training, seed=seed, device=device, workdir=workdir, name="liver-unet")
    model.to("cpu").eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    payload = {
        "state_dict": state,
        "config": {k: cfg[k] for k in ("spacing_mm", "crop", "channels", "hu_window")},
        "train_patients": [f"{c['center']}/{c['patient_id']}" for c in train_cases],
        "heldout_patients": [f"{c['center']}/{c['patient_id']}" for c in heldout_cases],
        "seed": int(seed),
    }
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
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
