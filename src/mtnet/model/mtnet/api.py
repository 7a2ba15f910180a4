"""The entry points the workflow calls: train a variant, predict, save and load a model.

Plain inputs: the crops of :func:`~mtnet.model.mtnet.data.load_crops`, the encoded
clinical matrix (N, F) (the lead's ``mtnet.factors`` encoding, fitted on the training
centers), the outcome, the strata (center) of the inner split; files out.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mtnet.errors import InputError
from mtnet.model.mtnet.data import resample_crops
from mtnet.model.mtnet.files import (LOG_TSV, MODEL_JSON, STEPWISE_STEPS_TSV, STEPWISE_TSV,
                                     WEIGHTS)
from mtnet.model.mtnet.hscore import HScoreReference, raw_heterogeneity
from mtnet.model.mtnet.network import MTnet, MTnetConfig, count_parameters
from mtnet.model.mtnet.variants import EXTRA, resolve, view_name
from mtnet.trainer import (Augmentation, TrainConfig, autocast, fit, hard_dice,
                                 resolve_device, roc_auc, runtime, stratified_holdout)
from mtnet.seeds import derive_seed
from mtnet.tables import read_tsv, write_tsv

log = logging.getLogger(__name__)

INIT_NAME, TRAIN_NAME, INNER_NAME = "mtnet-init", "mtnet", "mtnet-inner"


# --------------------------------------------------------------------------- the task


class MTnetTask:
    """MTnet's :class:`~mtnet.trainer.TrainingTask`: tensors resident on the device,
    augmentation there, loss BCE(pos_weight) + seg_weight x (Dice + CE)."""

    def __init__(self, arrays: dict, train_idx, inner_idx, pos_weight: float, seg_weight: float,
                 augment, eval_batch: int = 8):
        from monai.losses import DiceCELoss

        self.arrays = arrays  # CPU tensors: image/tumor (N, 1, D, H, W), clinical (N, F), y (N,)
        self.train_idx = torch.as_tensor(np.asarray(train_idx), dtype=torch.long)
        self.inner_idx = torch.as_tensor(np.asarray(inner_idx), dtype=torch.long)
        self.n_train = int(self.train_idx.numel())
        self.pos_weight_value = float(pos_weight)
        self.seg_weight = float(seg_weight)
        self.augment = Augmentation(augment)
        self.eval_batch = int(eval_batch)
        self.dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
        self.train: dict = {}
        self.inner: dict = {}

    def to(self, device: torch.device) -> None:
        self.train = {k: v[self.train_idx].to(device) for k, v in self.arrays.items()}
        self.inner = {k: v[self.inner_idx].to(device) for k, v in self.arrays.items()}
        self.pos_weight = torch.tensor(self.pos_weight_value, device=device)

    def train_batch(self, index: torch.Tensor, generator: torch.Generator) -> dict:
        batch = {k: v[index] for k, v in self.train.items()}
        if "image" in batch:
            batch["image"], (batch["tumor"],) = self.augment(batch["image"], [batch["tumor"]],
                                                             generator)
        return batch

    def _bce(self, logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logit.float(), y, pos_weight=self.pos_weight)

    def loss(self, model, batch: dict):
        out = model(batch.get("image"), batch.get("clinical"), batch.get("tumor"))
        bce = self._bce(out.logit, batch["y"])
        parts = {"bce": bce}
        total = bce
        if out.segmentation is not None:
            seg = out.segmentation.float()
            target = batch["tumor"].long()
            parts["seg_dice"] = hard_dice(seg.detach(), target)
            if self.seg_weight > 0:
                seg_loss = self.dice_ce(seg, target)
                parts["seg_loss"] = seg_loss
                total = total + self.seg_weight * seg_loss
        return total, parts

    def logits(self, model, data: dict) -> torch.Tensor:
        n = data["y"].shape[0]
        chunks = []
        for s in range(0, n, self.eval_batch):
            part = {k: v[s:s + self.eval_batch] for k, v in data.items()}
            chunks.append(model(part.get("image"), part.get("clinical"), part.get("tumor")).logit.float())
        return torch.cat(chunks) if chunks else torch.empty(0)

    def evaluate(self, model) -> dict:
        if self.inner_idx.numel() == 0:
            return {}
        logit = self.logits(model, self.inner)
        y = self.inner["y"]
        return {"inner_auc": roc_auc(y.cpu().numpy(), logit.cpu().numpy()),
                "inner_loss": float(self._bce(logit, y))}


# --------------------------------------------------------------------------- the fitted model


@dataclass
class FittedMTnet:
    """A trained variant: the network and everything prediction needs."""

    variant: str
    network: MTnet
    settings: dict  # resolved settings, JSON-able
    factor_names: list[str]  # the columns of the clinical matrix it expects
    used_columns: list[int]  # those fed to the clinical block
    pos_weight: float
    hscore: HScoreReference | None
    history: pd.DataFrame
    info: dict = field(default_factory=dict)
    stepwise_table: pd.DataFrame | None = None
    stepwise_steps: pd.DataFrame | None = None

    @property
    def config(self) -> MTnetConfig:
        return self.network.config

    @property
    def grid(self) -> tuple[int, int, int]:
        return tuple(self.settings["grid"])

    @property
    def view(self) -> tuple[str, float]:
        """(field of view, margin in mm) of the crops; a model saved before the setting
        existed saw the liver box."""
        return (self.settings.get("view", EXTRA["view"]),
                float(self.settings.get("view_margin_mm", EXTRA["view_margin_mm"])))


def _settings_json(resolved: dict) -> dict:
    out = {k: v for k, v in resolved.items() if k not in ("training",)}
    out["grid"] = list(resolved["grid"])
    out["network"] = {k: (list(v) if isinstance(v, tuple) else v)
                      for k, v in resolved["network"].items()}
    out["training"] = resolved["training"].to_dict()
    return out


def _tensors(crops: dict | None, clinical, grid, config: MTnetConfig, n: int,
             view: str = EXTRA["view"]) -> dict:
    """CPU tensors of the inputs this configuration uses, checked against ``n`` patients
    and the field of view ``view`` (:func:`~mtnet.model.mtnet.variants.view_name`)."""
    arrays: dict = {}
    if config.image:
        if crops is None:
            raise InputError("this MTnet variant needs the image crops", fix="pass crops from load_crops")
        if len(crops["image"]) != n:
            raise InputError(f"{len(crops['image'])} crops for {n} patients",
                             fix="pass the crops of the same patients, in the same order")
        seen = sorted(set(np.asarray(crops.get("view", [EXTRA["view"]] * n)).tolist()))
        if seen != [view]:
            raise InputError(f"crops seen through {', '.join(seen)}, the model needs {view}",
                             fix=f"load the crops with the model's view ({view})")
        on_grid = resample_crops(crops, grid)
        arrays["image"] = torch.from_numpy(np.ascontiguousarray(on_grid["image"], np.float32))[:, None]
        arrays["tumor"] = torch.from_numpy(np.ascontiguousarray(on_grid["tumor"], np.uint8))[:, None]
        empty = np.flatnonzero(~on_grid["tumor"].reshape(n, -1).any(1))
        if empty.size:
            pid = crops.get("patient_id", [None] * n)[empty[0]]
            raise InputError("empty tumor mask", patient=pid, fix="check the tumor stage's crop")
    if config.clinical:
        arrays["clinical"] = torch.from_numpy(np.ascontiguousarray(clinical, np.float32))
    return arrays


def _check_clinical(clinical, factor_names, n: int | None, needed: bool) -> np.ndarray | None:
    if not needed:
        return None
    if clinical is None:
        raise InputError("this MTnet variant needs the encoded clinical matrix",
                         fix="pass the factors encoding's matrix")
    clinical = np.asarray(clinical, dtype=np.float64)
    if clinical.ndim != 2 or (n is not None and clinical.shape[0] != n):
        raise InputError(f"clinical matrix of shape {clinical.shape} for {n} patients",
                         fix="pass one row per patient, one column per encoded factor")
    if clinical.shape[1] != len(factor_names):
        raise InputError(f"clinical matrix has {clinical.shape[1]} columns but "
                         f"{len(factor_names)} factor names",
                         fix="pass the encoding's names with its matrix")
    bad = ~np.isfinite(clinical)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"missing or infinite value in row {row}", column=factor_names[col],
                         fix="impute in the factors encoding")
    return clinical


def train_mtnet(variant: str, crops: dict | None, clinical, factor_names, y, strata,
                settings: dict | None, seed: int, device="cpu", workdir=None, resume: bool = False,
                hooks=()) -> FittedMTnet:
    """Train one MTnet variant on the training patients.

    ``crops``: :func:`~mtnet.model.mtnet.data.load_crops` of the patients (None for
    Model-CR), resampled here to the size preset's grid; ``clinical`` (N, F) float (None
    for Model-DR), columns named by ``factor_names``; ``y`` (N,) 0/1 MVI; ``strata`` (N,)
    the center of each patient (the inner split is stratified by it and ``y``);
    ``settings``: ``size`` (tiny | cpu | paper) and overrides (:func:`variants.resolve`);
    ``workdir``: checkpoints and the training log (``resume=True`` continues there).
    Rows of ``crops``, ``clinical``, ``y`` and ``strata`` are the same patients in the same
    order. Every random step derives from ``seed``.
    """
    resolved = resolve(variant, settings)
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    strata = np.asarray(strata).astype(str)
    if strata.shape != (n,):
        raise InputError(f"{len(strata)} strata for {n} patients", fix="one center per patient")
    if not np.isin(y, (0, 1)).all():
        raise InputError("mvi must be 0/1 for every training patient", column="mvi")
    events = int(y.sum())
    if events == 0 or events == n:
        raise InputError(f"{events} MVI events in {n} patients: one class only", column="mvi")
    factor_names = [str(f) for f in (factor_names or [])]
    net_cfg = dict(resolved["network"])
    clinical = _check_clinical(clinical, factor_names, n, net_cfg["clinical"])

    stepwise = None
    used = list(range(len(factor_names))) if net_cfg["clinical"] else []
    if resolved["stepwise"]:
        from mtnet.model.stepwise import backward_stepwise

        stepwise = backward_stepwise(clinical, y, factor_names, p_remove=resolved["p_remove"],
                                     test=resolved["stepwise_test"], seed=seed)
        used = stepwise.kept_columns
        log.info("%s: stepwise logistic regression kept %s", variant, stepwise.kept_factors or "none")
        if not used:
            log.warning("%s: the stepwise screen kept no factor; the clinical block is left out",
                        variant)
            net_cfg["clinical"] = False
    config = MTnetConfig(**net_cfg, n_factors=len(used))
    grid = resolved["grid"]
    if config.image and any(g % config.divisor for g in grid):
        raise InputError(f"grid {grid} is not divisible by {config.divisor} "
                         f"({len(config.channels)} levels)", fix="choose a grid that is")
    arrays = _tensors(crops, None if clinical is None else clinical[:, used], grid, config, n,
                      view_name(resolved["view"], resolved["view_margin_mm"]))
    arrays["y"] = torch.from_numpy(y.astype(np.float32))

    inner = stratified_holdout(strata, y, resolved["inner_fraction"], seed, INNER_NAME)
    train_idx, inner_idx = np.flatnonzero(~inner), np.flatnonzero(inner)
    y_train = y[train_idx]
    if y_train.sum() == 0:
        raise InputError("no MVI event left to train on after the inner split", column="mvi",
                         fix="lower inner_fraction")
    pos_weight = float((len(y_train) - y_train.sum()) / y_train.sum())

    training: TrainConfig = resolved["training"]
    dev = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, INIT_NAME))
        network = MTnet(config)
    task = MTnetTask(arrays, train_idx, inner_idx, pos_weight, resolved["seg_weight"],
                     training.augment, resolved["predict_batch_size"])
    log.info("%s (%s size, grid %s): %d training + %d inner patients, %d + %d events, "
             "pos_weight %.2f, %d parameters, device %s", variant, resolved["size"],
             "x".join(map(str, grid)), len(train_idx), len(inner_idx), int(y_train.sum()),
             int(y[inner_idx].sum()), pos_weight, count_parameters(network), dev)
    result = fit(network, task, training, seed=seed, device=dev, workdir=workdir, hooks=hooks,
                 resume=resume, name=TRAIN_NAME)

    hscore = None
    if config.image:
        with runtime(dev, training.threads), torch.no_grad(), autocast(dev, training.bf16):
            raw = _raw_h(network, task, {k: v.to(dev) for k, v in arrays.items()})
        hscore = HScoreReference(raw)
    network.to("cpu")
    info = {
        "seed": int(seed), "n_train": int(len(train_idx)), "n_inner": int(len(inner_idx)),
        "events_train": int(y_train.sum()), "events_inner": int(y[inner_idx].sum()),
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early, "parameters": count_parameters(network),
        "device": str(dev), "strata": sorted(set(strata.tolist())),
        "best_inner_auc": result.best_metrics.get("inner_auc"),
    }
    return FittedMTnet(
        variant=variant, network=network, settings=_settings_json(resolved),
        factor_names=factor_names, used_columns=[int(c) for c in used], pos_weight=pos_weight,
        hscore=hscore, history=result.history, info=info,
        stepwise_table=None if stepwise is None else stepwise.table,
        stepwise_steps=None if stepwise is None else stepwise.steps,
    )


def _raw_h(network: MTnet, task: MTnetTask, data: dict) -> np.ndarray:
    n = data["y"].shape[0]
    out = []
    for s in range(0, n, task.eval_batch):
        part = {k: v[s:s + task.eval_batch] for k, v in data.items()}
        res = network(part.get("image"), part.get("clinical"), part.get("tumor"),
                      return_features=True)
        out.append(raw_heterogeneity(res.features, part["tumor"]).cpu().numpy())
    return np.concatenate(out) if out else np.empty(0)


def predict_mtnet(model: FittedMTnet, crops: dict | None, clinical, device="cpu",
                  batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(risk, H-score) per patient, both (N,) float64.

    risk = sigmoid(logit - log(pos_weight)): the network was trained with the positive
    class weighted by pos_weight, which shifts its logit by log(pos_weight); subtracting
    it restores the training prevalence (a monotone map: AUCs unchanged). H-score: NaN for
    a variant without the image (Model-CR).
    """
    config = model.config
    n = None
    if config.image:
        if crops is None:
            raise InputError(f"{model.variant} needs the image crops", fix="pass crops from load_crops")
        n = len(crops["image"])
    if config.clinical:
        clinical = _check_clinical(clinical, model.factor_names, n, True)
        n = clinical.shape[0]
        clinical = clinical[:, model.used_columns]
    arrays = _tensors(crops, clinical, model.grid, config, n, view_name(*model.view))
    dev = resolve_device(device)
    bs = int(batch_size or model.settings.get("predict_batch_size", 8))
    net = model.network.to(dev).eval()
    logits, raws = [], []
    training = model.settings["training"]
    with (runtime(dev, training.get("threads"), deterministic=False), torch.no_grad(),
          autocast(dev, bool(training["bf16"]))):
        for s in range(0, n, bs):
            part = {k: v[s:s + bs].to(dev) for k, v in arrays.items()}
            res = net(part.get("image"), part.get("clinical"), part.get("tumor"),
                      return_features=config.image)
            logits.append(res.logit.float().cpu().numpy())
            if config.image:
                raws.append(raw_heterogeneity(res.features, part["tumor"]).cpu().numpy())
    model.network.to("cpu")
    logit = np.concatenate(logits).astype(np.float64) if logits else np.empty(0)
    risk = 1.0 / (1.0 + np.exp(-(logit - math.log(model.pos_weight))))
    if config.image:
        h = model.hscore.transform(np.concatenate(raws).astype(np.float64))
    else:
        h = np.full(n, np.nan)
    return risk, h


def predict_ensemble(models: list[FittedMTnet], crops, clinical, device="cpu"):
    """The fold ensemble: mean risk and mean H-score of the k fold models (docs/mtnet.md)."""
    if not models:
        raise InputError("no fold models to average", fix="train the k fold models first")
    preds = [predict_mtnet(m, crops, clinical, device=device) for m in models]
    return (np.mean([p[0] for p in preds], axis=0), np.mean([p[1] for p in preds], axis=0))


# --------------------------------------------------------------------------- files


def save(model: FittedMTnet, folder) -> Path:
    """``weights.pt`` (state dict), ``model.json`` (variant, settings, network config, factor
    names and the columns used, pos_weight, H-score reference, training facts),
    ``train_log.tsv``, and for Model-Logistic-CR-DR ``stepwise.tsv`` (term, coef, OR,
    ci_low, ci_high, p, note) and ``stepwise_steps.tsv``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.network.state_dict().items()},
               folder / WEIGHTS)
    meta = {
        "variant": model.variant, "settings": model.settings,
        "network": model.config.to_dict(), "factor_names": model.factor_names,
        "used_columns": model.used_columns,
        "used_factors": [model.factor_names[c] for c in model.used_columns],
        "pos_weight": model.pos_weight,
        "hscore_reference": None if model.hscore is None else model.hscore.to_list(),
        "info": model.info,
    }
    (folder / MODEL_JSON).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    # an epoch's wall time is in the job's log (the progress line), not in the model folder:
    # two runs of the same config give the same files
    write_tsv(model.history.drop(columns=["seconds"], errors="ignore"), folder / LOG_TSV)
    if model.stepwise_table is not None:
        write_tsv(model.stepwise_table, folder / STEPWISE_TSV)
        write_tsv(model.stepwise_steps, folder / STEPWISE_STEPS_TSV)
    return folder


def load(folder) -> FittedMTnet:
    folder = Path(folder)
    path = folder / MODEL_JSON
    if not path.exists() or not (folder / WEIGHTS).exists():
        raise InputError("not an MTnet model folder (model.json / weights.pt missing)", path=folder,
                         fix="train the model first")
    meta = json.loads(path.read_text())
    network = MTnet(MTnetConfig.from_dict(meta["network"]))
    network.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    network.eval()
    read = read_tsv
    step_table = read(folder / STEPWISE_TSV) if (folder / STEPWISE_TSV).exists() else None
    step_steps = read(folder / STEPWISE_STEPS_TSV) if (folder / STEPWISE_STEPS_TSV).exists() else None
    ref = meta["hscore_reference"]
    return FittedMTnet(
        variant=meta["variant"], network=network, settings=meta["settings"],
        factor_names=meta["factor_names"], used_columns=meta["used_columns"],
        pos_weight=float(meta["pos_weight"]), hscore=None if ref is None else HScoreReference(ref),
        history=read(folder / LOG_TSV), info=meta["info"],
        stepwise_table=step_table, stepwise_steps=step_steps,
    )
