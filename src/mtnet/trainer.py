"""One trainer for every network of the project (MTnet's variants, the liver UNet).

:func:`fit` runs the loop; what is trained on, and how a batch becomes a loss, is a
*task* (:class:`TrainingTask`): it holds its data as tensors resident on the training
device, draws each batch (augmented on the device) from the trainer's generator, and
evaluates itself on its inner split. The same code runs on ``"cpu"`` and ``"cuda"``;
only these differ, by design:

- CPU: ``torch.use_deterministic_algorithms(True)``; float32.
- CUDA: bf16 autocast (``TrainConfig.bf16``), cuDNN autotuning; not bitwise reproducible.

Every random draw comes from seeds derived from the caller's ``seed``
(:func:`mtnet.seeds.derive_seed`): the augmentation ``torch.Generator`` (batch order,
affine, flips, intensity, noise), torch's global generator (dropout). With ``workdir``,
every epoch writes ``checkpoint.pt`` (model, optimizer, scheduler, all RNG states, epoch,
early-stopping state, log) and ``train_log.tsv``; ``resume=True`` continues from the last
checkpoint, and on the CPU a run killed after epoch k and resumed ends with weights and
metrics identical to an uninterrupted run (tests/test_trainer.py).

Choices (docs/mtnet.md): AdamW; learning rate warm-up (linear) + cosine decay to zero, or
the polynomial decay of nnU-Net (the liver UNet's); early stopping on the inner split's
AUC (ties: the lower inner loss), keeping the best epoch's weights; batches always full
(the epoch's permutation wraps around), so every step has the same shape.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mtnet.errors import InputError
from mtnet.seeds import derive_seed, rng
from mtnet.tables import write_tsv

log = logging.getLogger(__name__)

LOG_COLUMNS = ["epoch", "lr", "train_loss", "bce", "seg_loss", "seg_dice", "inner_auc",
               "inner_loss", "seconds"]
SCHEDULES = ("cosine", "poly")
MONITORS = ("inner_auc", "inner_loss", "last")
CHECKPOINT = "checkpoint.pt"
LOG_FILE = "train_log.tsv"


# --------------------------------------------------------------------------- configuration


@dataclass
class AugmentConfig:
    """Augmentation on the device, per sample of a batch.

    Spatial (one ``affine_grid``/``grid_sample`` per batch, the same warp for the image and
    its masks; trilinear, masks thresholded at 0.5): rotation about each axis uniform in
    ±``rotate_deg``, isotropic scale uniform in 1 ± ``scale``, a flip of each axis in
    ``flip_axes`` (0, 1, 2 = D, H, W) with probability 1/2. Intensity (image only):
    ``x * a + b`` with ``a`` uniform in 1 ± ``intensity_scale``, ``b`` in ±``intensity_shift``,
    plus Gaussian noise of SD uniform in [0, ``noise_std``].
    """

    enabled: bool = True
    spatial: bool = True
    rotate_deg: float = 10.0
    scale: float = 0.1
    flip_axes: tuple[int, ...] = (0, 1, 2)
    intensity_scale: float = 0.1
    intensity_shift: float = 0.1
    noise_std: float = 0.02

    def __post_init__(self):
        self.flip_axes = tuple(int(a) for a in self.flip_axes)
        if any(a not in (0, 1, 2) for a in self.flip_axes):
            raise ValueError(f"AugmentConfig: flip_axes are 0, 1, 2 (D, H, W), got {self.flip_axes}")


@dataclass
class TrainConfig:
    """How a network is trained (the defaults are the ``cpu`` size's; docs/mtnet.md)."""

    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: int = 2
    poly_power: float = 0.9
    patience: int = 8
    min_epochs: int = 8
    monitor: str = "inner_auc"
    bf16: bool = True
    compile: bool = False
    threads: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig: schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.monitor not in MONITORS:
            raise ValueError(f"TrainConfig: monitor must be one of {MONITORS}, got {self.monitor!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("TrainConfig: epochs and batch_size must be >= 1")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"]["flip_axes"] = list(self.augment.flip_axes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Schedule:
    """Learning-rate factor of epoch ``e`` (a picklable callable for ``LambdaLR``).

    ``cosine``: linear warm-up over ``warmup`` epochs ((e + 1) / (warmup + 1)), then
    0.5 (1 + cos(pi t)), t = (e - warmup) / (epochs - warmup), reaching 0 at ``epochs``.
    ``poly``: (1 - e / epochs) ** power (nnU-Net; Isensee et al., Nat Methods 2021).
    """

    kind: str
    epochs: int
    warmup: int = 0
    power: float = 0.9

    def __call__(self, epoch: int) -> float:
        if self.kind == "poly":
            return max(0.0, 1.0 - epoch / max(1, self.epochs)) ** self.power
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        t = (epoch - self.warmup) / max(1, self.epochs - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


# --------------------------------------------------------------------------- devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; ``"cuda"`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' asked for, but torch sees no GPU",
                         fix="use device 'cpu' or 'auto'")
    return dev


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA when asked; a no-op elsewhere (the CPU path stays float32)."""
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _set_deterministic(mode: bool, compiled: bool) -> None:
    """torch's deterministic-algorithms switch. ``torch.use_deterministic_algorithms`` also
    sets ``torch._inductor.config.deterministic``, which only compiled code reads, and
    importing torch._inductor costs a process 2.4-3.9 s (measured: a tiny fold training is
    2 s of training in 18 s); without ``compiled`` only the kernels' switch is set, the
    one ``torch.are_deterministic_algorithms_enabled`` reports."""
    switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if compiled or switch is None:
        torch.use_deterministic_algorithms(mode)
    else:
        switch(mode, warn_only=False)


@contextlib.contextmanager
def runtime(device: torch.device, threads: int | None = None, deterministic: bool = True,
            compiled: bool = False):
    """Deterministic algorithms on the CPU, cuDNN autotuning on CUDA, torch's global RNG
    forked (the caller's stream is left as it was); all restored on exit. ``compiled``:
    code run inside is compiled (``torch.compile``), so Inductor's deterministic mode is
    set too.

    ``deterministic=False`` is for inference on the CPU: the flag governs backward kernels and
    scatter/index ops, none of which a forward pass of our networks uses; the workflow tests
    check that two runs still give byte-identical predictions."""
    previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
                torch.backends.cudnn.benchmark)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            if device.type != "cpu":
                torch.backends.cudnn.benchmark = True
            elif deterministic:
                _set_deterministic(True, compiled)
            if threads:
                torch.set_num_threads(int(threads))
            yield
        finally:
            if torch.are_deterministic_algorithms_enabled() != previous[0]:
                _set_deterministic(previous[0], compiled)
            torch.set_num_threads(previous[1])
            torch.backends.cudnn.benchmark = previous[2]


# --------------------------------------------------------------------------- augmentation


def _rotation(angles: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` angles (radians) about x, y, z -> ``(B, 3, 3)`` rotation Rz Ry Rx."""
    cx, cy, cz = torch.cos(angles).unbind(1)
    sx, sy, sz = torch.sin(angles).unbind(1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], 1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx


class Augmentation:
    """:class:`AugmentConfig` applied to a batch on its device, drawn from ``generator``."""

    def __init__(self, config: AugmentConfig):
        self.config = config

    def _uniform(self, n: int, half_width: float, generator, device, centre: float = 0.0):
        u = torch.rand(n, generator=generator, device=device)
        return centre + (2.0 * u - 1.0) * half_width

    def affine(self, n: int, generator, device) -> torch.Tensor:
        """``(n, 3, 4)`` matrices for ``F.affine_grid`` (output -> input coordinates)."""
        cfg = self.config
        angles = torch.rand(n, 3, generator=generator, device=device)
        angles = (2.0 * angles - 1.0) * math.radians(cfg.rotate_deg)
        scale = self._uniform(n, cfg.scale, generator, device, centre=1.0)
        flips = torch.rand(n, 3, generator=generator, device=device) < 0.5
        # affine_grid's coordinates run (x, y, z) = (W, H, D): tensor axis a is coordinate 2 - a
        allowed = torch.zeros(3, dtype=torch.bool, device=device)
        for a in cfg.flip_axes:
            allowed[2 - a] = True
        sign = torch.where(flips & allowed, -1.0, 1.0)
        linear = _rotation(angles) * scale[:, None, None] * sign[:, None, :]
        return torch.cat([linear, torch.zeros(n, 3, 1, device=device)], dim=2)

    def spatial(self, image: torch.Tensor, masks: Iterable[torch.Tensor], generator):
        """The same random warp of ``image (B, C, D, H, W)`` and each 0/1 mask
        ``(B, 1, D, H, W)``: one trilinear ``grid_sample`` of image and masks stacked as
        channels, the masks then thresholded at 0.5 (dtype kept), as the tumor stage
        resamples its masks. A mask the threshold would empty keeps every voxel its warped
        coverage touches (as :func:`mtnet.model.mtnet.data.resample_crops` keeps a small
        tumor); a sample whose mask the warp moves out of the grid altogether is left
        unwarped: a non-empty mask never comes out empty (statistics inside it would be
        NaN)."""
        masks = list(masks)
        theta = self.affine(image.shape[0], generator, image.device)
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        c = image.shape[1]
        stacked = torch.cat([image, *(m.to(image.dtype) for m in masks)], dim=1) if masks else image
        out = F.grid_sample(stacked, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        warped, keep = [], torch.zeros(image.shape[0], dtype=torch.bool, device=image.device)
        for i, m in enumerate(masks):
            coverage = out[:, c + i:c + i + 1]
            w = coverage >= 0.5
            had = (m != 0).flatten(1).any(1)
            lost = had & ~w.flatten(1).any(1)
            w = torch.where(lost.view(-1, 1, 1, 1, 1), coverage > 0, w)
            keep |= had & ~w.flatten(1).any(1)
            warped.append(w.to(m.dtype))
        # torch.where, not an `if`: no host synchronisation per batch
        k = keep.view(-1, 1, 1, 1, 1)
        return (torch.where(k, image, out[:, :c]),
                [torch.where(k, m, w) for m, w in zip(masks, warped)])

    def intensity(self, image: torch.Tensor, generator) -> torch.Tensor:
        cfg = self.config
        n, dev = image.shape[0], image.device
        shape = (n,) + (1,) * (image.dim() - 1)
        a = self._uniform(n, cfg.intensity_scale, generator, dev, centre=1.0).view(shape)
        b = self._uniform(n, cfg.intensity_shift, generator, dev).view(shape)
        out = image * a + b
        if cfg.noise_std > 0:
            sd = (torch.rand(n, generator=generator, device=dev) * cfg.noise_std).view(shape)
            out = out + sd * torch.randn(image.shape, generator=generator, device=dev)
        return out

    def __call__(self, image: torch.Tensor, masks: Iterable[torch.Tensor] = (), generator=None):
        masks = list(masks)
        if not self.config.enabled:
            return image, masks
        if self.config.spatial:
            image, masks = self.spatial(image, masks, generator)
        return self.intensity(image, generator), masks


# --------------------------------------------------------------------------- splits


def stratified_holdout(strata, y, fraction: float, seed: int, name: str = "inner") -> np.ndarray:
    """A held-out (inner) subset, stratified by stratum (center) and outcome: boolean (N,).

    In each (stratum, outcome) cell of n patients, ``round(fraction * n)`` of them, drawn
    with :func:`mtnet.seeds.rng` ``(seed, name, stratum, outcome)`` (adding a center shifts
    no other center's draw). Then, where the data allow it, the inner subset is given at
    least one patient of each outcome and the rest keeps at least one of each: a patient is
    moved from (or back to) the largest cell of that outcome. Patients are identified by
    their position; the same inputs always give the same split.
    """
    strata = np.asarray(strata).astype(str)
    y = np.asarray(y)
    if strata.shape != y.shape:
        raise ValueError(f"stratified_holdout: strata {strata.shape} and y {y.shape} differ")
    inner = np.zeros(len(y), dtype=bool)
    order = {}
    for s in sorted(set(strata)):
        for outcome in sorted(set(y[strata == s].tolist())):
            members = np.flatnonzero((strata == s) & (y == outcome))
            perm = members[rng(seed, name, s, outcome).permutation(len(members))]
            order[(s, outcome)] = perm
            inner[perm[:int(round(fraction * len(members)))]] = True
    for outcome in sorted(set(y.tolist())):
        cells = sorted((c for c in order if c[1] == outcome), key=lambda c: (-len(order[c]), c[0]))
        n_out = int((y == outcome).sum())
        if n_out >= 2 and not inner[y == outcome].any():
            inner[order[cells[0]][0]] = True
        if n_out >= 2 and inner[y == outcome].all():
            inner[order[cells[0]][-1]] = False
    return inner


# --------------------------------------------------------------------------- tasks and hooks


class TrainingTask(Protocol):
    """What :func:`fit` trains on.

    ``to(device)`` moves the task's tensors there (once); ``n_train`` patients/cases are
    indexed 0..n-1; ``train_batch(index, generator)`` returns the batch (augmented, on the
    device) for a 1-D index tensor; ``loss(model, batch)`` returns the scalar loss to
    minimise and a dict of batch means to log (``bce``, ``seg_loss``, ``seg_dice``);
    ``evaluate(model)`` (called under ``torch.no_grad`` in eval mode) returns the inner
    split's ``inner_auc`` and ``inner_loss``, or ``{}`` when there is no inner split
    (then there is no early stopping and the last epoch's weights are kept).
    """

    n_train: int

    def to(self, device: torch.device) -> None: ...

    def train_batch(self, index: torch.Tensor, generator: torch.Generator) -> dict: ...

    def loss(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict]: ...

    def evaluate(self, model: torch.nn.Module) -> dict: ...


Hook = Callable[[str, dict], None]
"""``hook(event, info)`` with event ``"epoch_end"`` (info: epoch (1-based), epochs, row (the
log row), model, stopped) or ``"train_end"`` (info: result, model). A hook that raises stops
the run; the epoch's checkpoint is already written."""


@dataclass
class EarlyStopping:
    """Best epoch by ``monitor`` (``inner_auc``: higher, ties to the lower ``inner_loss``;
    ``inner_loss``: lower; ``last``: every epoch is the new best, so the run trains all its
    epochs and keeps the last weights, the inner split only logged); stop after ``patience``
    epochs without improvement (0 = never), not before ``min_epochs``."""

    monitor: str
    patience: int
    min_epochs: int
    best_key: list | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped: bool = False

    def key(self, metrics: dict) -> list[float]:
        def finite(v, sign):
            return sign * float(v) if v is not None and np.isfinite(v) else -math.inf

        loss = finite(metrics.get("inner_loss"), -1.0)
        if self.monitor == "inner_auc":
            return [finite(metrics.get("inner_auc"), 1.0), loss]
        return [loss]

    def update(self, epoch: int, metrics: dict) -> bool:
        """True when ``epoch`` is the new best."""
        key = [float(epoch)] if self.monitor == "last" else self.key(metrics)
        improved = self.best_key is None or key > self.best_key
        if improved:
            self.best_key, self.best_epoch, self.bad_epochs = key, epoch, 0
        else:
            self.bad_epochs += 1
        if self.patience > 0 and self.bad_epochs >= self.patience and epoch >= self.min_epochs:
            self.stopped = True
        return improved

    def state(self) -> dict:
        return {"best_key": self.best_key, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "stopped": self.stopped}


@dataclass
class FitResult:
    history: pd.DataFrame
    best_epoch: int | None
    epochs_run: int
    stopped_early: bool
    best_metrics: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- checkpoints


def _cpu_state(module: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _rng_state(generator: torch.Generator, device: torch.device) -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "augment": generator.get_state(),
             "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
             "numpy_rest": [int(pos), int(has_gauss), float(gauss)]}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["augment"])
    pos, has_gauss, gauss = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), pos,
                         has_gauss, gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _write_atomic(payload: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def write_log(history: list[dict], path: Path) -> None:
    write_tsv(pd.DataFrame(history, columns=LOG_COLUMNS), path)


# --------------------------------------------------------------------------- the loop


def _batches(n: int, batch_size: int, generator: torch.Generator, device) -> list[torch.Tensor]:
    """The epoch's batches: a permutation of 0..n-1 wrapped around to fill the last batch."""
    steps = max(1, math.ceil(n / batch_size))
    perm = torch.randperm(n, generator=generator, device=device)
    reps = math.ceil(steps * batch_size / n)
    order = perm.repeat(reps)[: steps * batch_size]
    return list(order.view(steps, batch_size))


def _fmt(v, spec=".4f") -> str:
    return "NA" if v is None or not np.isfinite(v) else format(v, spec)


def fit(model: torch.nn.Module, task: TrainingTask, config: TrainConfig, *, seed: int,
        device: str | torch.device = "cpu", workdir=None, hooks: Iterable[Hook] = (),
        resume: bool = False, name: str = "model") -> FitResult:
    """Train ``model`` on ``task``; the model ends on ``device`` with the best epoch's weights.

    ``name`` separates the random streams of different trainings under one seed.
    """
    device = resolve_device(device)
    hooks = list(hooks)
    workdir = Path(workdir) if workdir is not None else None
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    ckpt_path = workdir / CHECKPOINT if workdir is not None else None
    if resume and workdir is None:
        raise ValueError("fit: resume needs a workdir")

    with runtime(device, config.threads, compiled=config.compile):
        model.to(device)
        task.to(device)
        train_model = torch.compile(model) if config.compile else model
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                      weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, Schedule(config.schedule, config.epochs, config.warmup_epochs,
                                config.poly_power))
        generator = torch.Generator(device=device)
        generator.manual_seed(derive_seed(seed, name, "augment"))
        torch.manual_seed(derive_seed(seed, name, "torch"))
        stopping = EarlyStopping(config.monitor, config.patience, config.min_epochs)
        history: list[dict] = []
        best_state, start = None, 0

        if resume and ckpt_path.exists():
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            if ckpt["config"] != config.to_dict() or ckpt["name"] != name or ckpt["seed"] != int(seed):
                raise InputError("the checkpoint was written by another training (settings, "
                                 "name or seed differ)", path=ckpt_path,
                                 fix="delete the checkpoint, or resume with the same settings")
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            _set_rng_state(ckpt["rng"], generator, device)
            for k, v in ckpt["early_stopping"].items():
                setattr(stopping, k, v)
            best_state, history, start = ckpt["best_state"], ckpt["history"], ckpt["epoch"]
            log.info("%s: resumed after epoch %d of %d", name, start, config.epochs)
        elif resume:
            log.info("%s: no checkpoint in %s, starting afresh", name, workdir)

        for epoch in range(start, config.epochs):
            if stopping.stopped:
                break
            t0 = time.perf_counter()
            model.train()
            sums: dict[str, torch.Tensor] = {}
            batches = _batches(task.n_train, config.batch_size, generator, device)
            for index in batches:
                batch = task.train_batch(index, generator)
                with autocast(device, config.bf16):
                    loss, parts = task.loss(train_model, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                # summed on the device: no host synchronisation inside the epoch
                for k, v in {"train_loss": loss, **parts}.items():
                    v = v.detach().float()
                    sums[k] = sums[k] + v if k in sums else v
            lr = float(optimizer.param_groups[0]["lr"])
            scheduler.step()
            model.eval()
            with torch.no_grad(), autocast(device, config.bf16):
                metrics = task.evaluate(model)
            row = {"epoch": epoch + 1, "lr": lr,
                   **{k: float(v) / len(batches) for k, v in sums.items()},
                   **{k: float(v) for k, v in metrics.items()},
                   "seconds": round(time.perf_counter() - t0, 3)}
            row = {c: row.get(c, math.nan) for c in LOG_COLUMNS}
            history.append(row)
            if metrics:
                if stopping.update(epoch + 1, metrics):
                    best_state = _cpu_state(model)
            if ckpt_path is not None:
                _write_atomic({
                    "name": name, "seed": int(seed), "config": config.to_dict(),
                    "epoch": epoch + 1, "model": _cpu_state(model),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(generator, device), "early_stopping": stopping.state(),
                    "best_state": best_state, "history": history,
                }, ckpt_path)
                write_log(history, workdir / LOG_FILE)
            log.info("%s epoch %d/%d: loss %s (bce %s, seg %s, seg Dice %s), inner AUC %s, "
                     "inner loss %s, %.1f s", name, epoch + 1, config.epochs,
                     _fmt(row["train_loss"]), _fmt(row["bce"]), _fmt(row["seg_loss"]),
                     _fmt(row["seg_dice"], ".3f"), _fmt(row["inner_auc"], ".3f"),
                     _fmt(row["inner_loss"]), row["seconds"])
            for hook in hooks:
                hook("epoch_end", {"epoch": epoch + 1, "epochs": config.epochs, "row": row,
                                   "model": model, "stopped": stopping.stopped})

        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        frame = pd.DataFrame(history, columns=LOG_COLUMNS)
        best = stopping.best_epoch
        result = FitResult(
            history=frame, best_epoch=best, epochs_run=len(history), stopped_early=stopping.stopped,
            best_metrics=frame.loc[frame["epoch"] == best].iloc[0].to_dict() if best else {},
        )
        if stopping.stopped:
            log.info("%s: stopped early after epoch %d; best epoch %d", name, len(history), best)
        for hook in hooks:
            hook("train_end", {"result": result, "model": model})
    return result


# --------------------------------------------------------------------------- helpers for tasks


def hard_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean foreground Dice of ``argmax(logits (B, 2, ...))`` against ``target (B, 1, ...)``
    (a sample with both empty counts 1)."""
    if logits.shape[1] == 2:
        # argmax's answer (a tie goes to channel 0, its first index) without a strided
        # argmax over the channel axis: that was a tenth of an MTnet CPU training step
        pred = logits[:, 1:2] > logits[:, 0:1]
    else:
        pred = logits.argmax(dim=1, keepdim=True) == 1
    ref = target.bool()
    inter = (pred & ref).sum(dim=(1, 2, 3, 4)).float()
    total = (pred.sum(dim=(1, 2, 3, 4)) + ref.sum(dim=(1, 2, 3, 4))).float()
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total)).mean()


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn); NaN when ``y`` has one class only."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return math.nan
    return float(roc_auc_score(y, score))
