"""MTnet training throughput on a GPU, against a plain MONAI UNet of the same backbone.

One self-contained script for the GPU machine (Python 3.12, torch + CUDA installed, no
package registry). It imports the ``mtnet`` package from this checkout's ``src/`` and MONAI
either from the environment or from a pure-Python wheel in ``--wheels`` (default
``<repo>/.whl``, git-ignored; ``pip download --no-deps monai==1.6.1 -d .whl``), imported
straight from the zip.

Modes (every one prints one JSON object on stdout; progress goes to stderr):

``throughput`` (default)
    1. Reference: ``monai.networks.nets.UNet`` (channels, 2 residual units), a full train
       step (forward, DiceCE loss, backward, AdamW) on pre-made batches already on the
       device, bf16 autocast on CUDA; ``--warmup`` untimed steps, then after every MTnet
       epoch but the first as many timed steps as that epoch had (interleaved).
    2. MTnet Model-CR-DR with the same backbone through the project's trainer
       (:func:`mtnet.trainer.fit`): ``--n-volumes`` random crops of the real shape
       generated on the device and resident there, GPU-side augmentation (affine + flips
       via grid_sample on image and mask, intensity, noise), BCE + Dice + CE, bf16:
       volumes/s over the epochs after the first (no inner split, no checkpoint: the step
       loop alone). The per-epoch extras of a real training -- one checkpoint and one
       inner-split evaluation -- are timed apart and reported.
    Output: both rates, ``ratio`` = MTnet / UNet (wall time), the goal (>= 0.9) and floor
    (>= 0.8); also ``ratio_cpu_time`` (process CPU time), the steadier figure on a shared
    CPU with ``--threads 1`` (meaningless on a GPU, where the host mostly waits).
``train``
    One full Model-CR-DR training (``train_mtnet``, early stopping, checkpoints) on a crop
    bundle (``--bundle``, an .npz made by ``pack``) or on ``--synthetic N`` generated
    crops; wall time, epochs, seconds per epoch, volumes/s.
``pack``
    Write a bundle from the tumor stage's roi folders and a labels TSV (patient_id, center,
    mvi, then any already-encoded numeric factor columns): image as uint8 (0..255), masks,
    clinical matrix, outcome, strata; optionally on a coarser ``--grid`` (64 MiB travel).

``--smoke`` shrinks everything (16^3, widths 4..16, a few steps) so the script runs on a
CPU in seconds (tests/test_mtnet_gpu_bench.py). A watchdog (``--timeout``) ends a run that
hangs, with a traceback and a non-zero exit; every failure prints a JSON ``error``.

Example on the GPU machine:
    python3 bench/gpu_train.py throughput --device cuda > $OUT/throughput.json
"""

from __future__ import annotations

import argparse
import faulthandler
import glob
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

GOAL, FLOOR = 0.9, 0.8
PAPER = {"grid": 96, "channels": (16, 32, 64, 128, 256), "res_units": 2, "batch": 8}
SMOKE = {"grid": 16, "channels": (4, 8, 16), "res_units": 1, "batch": 2, "warmup": 1,
         "n_volumes": 6, "epochs": 3, "synthetic": 12, "n_factors": 4}


def eprint(*a):
    print(*a, file=sys.stderr, flush=True)


def import_monai(wheels: Path):
    """MONAI from the environment, else from a wheel in ``wheels`` (zipimport)."""
    try:
        import monai  # noqa: F401
        return "environment"
    except ImportError:
        found = sorted(glob.glob(str(wheels / "monai-*.whl")))
        if not found:
            raise SystemExit(f"MONAI is not installed and no monai-*.whl is in {wheels} "
                             f"(pip download --no-deps monai==1.6.1 -d {wheels})")
        sys.path.insert(0, found[-1])
        import monai  # noqa: F401
        return found[-1]


def machine(torch, device) -> dict:
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "device": str(device), "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
        out["cuda"] = torch.version.cuda
    return out


def sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- data on the device


def random_crops(torch, n: int, grid: int, device, seed: int = 0, n_factors: int = 20,
                 prevalence: float = 0.12) -> dict:
    """Crops of the real shape made on ``device``: a smooth random texture in [0, 1], one
    ball-shaped darker tumor per crop (its mask), random encoded factors, ~12% events."""
    g = torch.Generator(device=device).manual_seed(seed)
    shape = (n, 1, grid, grid, grid)
    coarse = torch.rand((n, 1, max(2, grid // 8),) + (max(2, grid // 8),) * 2, generator=g,
                        device=device)
    image = torch.nn.functional.interpolate(coarse, size=(grid,) * 3, mode="trilinear",
                                            align_corners=False)
    image = (0.5 * image + 0.25 + 0.05 * torch.randn(shape, generator=g, device=device))
    axis = torch.arange(grid, device=device, dtype=torch.float32)
    zz, yy, xx = torch.meshgrid(axis, axis, axis, indexing="ij")
    centre = grid * (0.3 + 0.4 * torch.rand(n, 3, generator=g, device=device))
    radius = grid * (0.08 + 0.12 * torch.rand(n, generator=g, device=device))
    d2 = ((zz[None] - centre[:, 0, None, None, None]) ** 2 + (yy[None] - centre[:, 1, None, None, None]) ** 2
          + (xx[None] - centre[:, 2, None, None, None]) ** 2)
    tumor = (d2 <= radius[:, None, None, None] ** 2)[:, None]
    image = torch.where(tumor, image * 0.6, image).clamp(0, 1)
    y = (torch.rand(n, generator=g, device=device) < prevalence).float()
    y[:2] = torch.tensor([0.0, 1.0], device=device)
    return {"image": image.contiguous(), "tumor": tumor.to(torch.uint8), "y": y,
            "clinical": torch.randn(n, n_factors, generator=g, device=device)}


# --------------------------------------------------------------------------- throughput


class UNetReference:
    """Plain MONAI UNet full train steps on pre-made batches resident on the device."""

    def __init__(self, torch, device, grid, channels, res_units, batch, bf16, compile_):
        from monai.losses import DiceCELoss
        from monai.networks.nets import UNet

        self.torch, self.device, self.batch, self.bf16 = torch, device, batch, bf16
        torch.manual_seed(0)
        self.net = UNet(3, 1, 2, channels, (2,) * (len(channels) - 1),
                        num_res_units=res_units).to(device)
        self.model = torch.compile(self.net) if compile_ else self.net
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-3)
        self.loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
        data = random_crops(torch, 2 * batch, grid, device, seed=1)
        self.batches = [(data["image"][i * batch:(i + 1) * batch],
                         data["tumor"][i * batch:(i + 1) * batch].long()) for i in range(2)]
        self.i, self.steps, self.seconds, self.cpu_seconds = 0, 0, 0.0, 0.0

    def step(self):
        from mtnet.trainer import autocast

        x, t = self.batches[self.i % 2]
        self.i += 1
        with autocast(self.device, self.bf16):
            loss = self.loss_fn(self.model(x).float(), t)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def time_steps(self, k: int) -> None:
        self.net.train()
        sync(self.torch, self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(k):
            self.step()
        sync(self.torch, self.device)
        self.seconds += time.perf_counter() - t0
        self.cpu_seconds += time.process_time() - c0
        self.steps += k

    def result(self) -> dict:
        out = {"volumes_per_s": self.steps * self.batch / self.seconds, "steps": self.steps,
               "seconds": round(self.seconds, 3),
               "volumes_per_cpu_s": self.steps * self.batch / max(self.cpu_seconds, 1e-9),
               "parameters": sum(p.numel() for p in self.net.parameters())}
        return out


def mtnet_settings(grid, channels, res_units, batch, epochs, compile_, bf16=True) -> dict:
    size = "paper" if grid >= 64 else "tiny"
    return {"size": size, "grid": (grid,) * 3, "channels": tuple(channels),
            "num_res_units": res_units, "batch_size": batch, "epochs": epochs, "patience": 0,
            "min_epochs": 0, "compile": compile_, "bf16": bf16}


def mtnet_rate(torch, device, grid, channels, res_units, batch, epochs, n_volumes, bf16, compile_,
               reference: UNetReference | None = None, n_factors=20):
    """Model-CR-DR through the trainer's step loop, data and augmentation on the device.

    With ``reference``, after every MTnet epoch (from a trainer hook, outside the epoch's
    timing) the plain UNet runs as many steps as the epoch had: the two rates are sampled
    side by side, so a machine whose load changes over time biases neither.
    """
    from mtnet.model.mtnet.api import MTnetTask
    from mtnet.model.mtnet.network import MTnet, MTnetConfig, count_parameters
    from mtnet.model.mtnet.variants import resolve
    from mtnet.trainer import fit

    r = resolve("Model-CR-DR", mtnet_settings(grid, channels, res_units, batch, epochs, compile_, bf16))
    config = MTnetConfig(**r["network"], n_factors=n_factors)
    torch.manual_seed(0)
    net = MTnet(config)
    data = random_crops(torch, n_volumes, grid, device, seed=2, n_factors=n_factors)
    task = MTnetTask(data, list(range(n_volumes)), [], pos_weight=7.0, seg_weight=1.0,
                     augment=r["training"].augment, eval_batch=batch)
    steps = math.ceil(n_volumes / batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    # process CPU time of each MTnet epoch: from the end of one hook to the start of the next
    # (on a shared CPU, wall time mostly measures the neighbours' load)
    cpu = {"epochs": [], "since": time.process_time()}

    def interleave(event, info):
        if event != "epoch_end":
            return
        cpu["epochs"].append(time.process_time() - cpu["since"])
        if reference is not None and info["epoch"] > 1:
            reference.time_steps(steps)
        cpu["since"] = time.process_time()

    result = fit(net, task, r["training"], seed=0, device=device, name="bench", hooks=[interleave])
    hist = result.history
    timed = hist["seconds"].iloc[1:] if len(hist) > 1 else hist["seconds"]
    seconds = float(timed.sum())
    cpu_seconds = float(sum(cpu["epochs"][1:] if len(hist) > 1 else cpu["epochs"]))
    out = {"volumes_per_s": len(timed) * steps * batch / seconds, "epochs_timed": int(len(timed)),
           "volumes_per_cpu_s": len(timed) * steps * batch / max(cpu_seconds, 1e-9),
           "steps_per_epoch": steps, "seconds": round(seconds, 3),
           "first_epoch_s": float(hist["seconds"].iloc[0]),
           "parameters": count_parameters(net), "n_volumes": n_volumes,
           "final_train_loss": float(hist["train_loss"].iloc[-1])}
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
    out["epoch_extras"] = epoch_extras(torch, device, net, task, data, r["training"], batch)
    return out


def epoch_extras(torch, device, net, task, data, training, batch) -> dict:
    """What a real training adds per epoch: one checkpoint write, one inner evaluation (a
    fifth of the volumes, the default inner fraction)."""
    from mtnet.trainer import _cpu_state, _write_atomic, autocast

    opt = torch.optim.AdamW(net.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        sync(torch, device)
        t0 = time.perf_counter()
        _write_atomic({"model": _cpu_state(net), "optimizer": opt.state_dict(),
                       "best_state": _cpu_state(net)}, Path(tmp) / "checkpoint.pt")
        checkpoint_s = time.perf_counter() - t0
    n_inner = max(1, data["y"].shape[0] // 5)
    inner = {k: v[:n_inner] for k, v in data.items()}
    net.eval()
    sync(torch, device)
    t0 = time.perf_counter()
    with torch.no_grad(), autocast(device, training.bf16):
        task.logits(net, inner)
    sync(torch, device)
    return {"checkpoint_s": round(checkpoint_s, 4), "inner_eval_s": round(time.perf_counter() - t0, 4),
            "inner_volumes": n_inner}


def run_throughput(args, torch, device) -> dict:
    bf16 = not args.no_bf16
    eprint(f"[gpu_train] grid {args.grid}, channels {args.channels}, batch {args.batch}, "
           f"device {device}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    reference = UNetReference(torch, device, args.grid, args.channels, args.res_units, args.batch,
                              bf16, args.compile)
    reference.time_steps(args.warmup)
    reference.steps, reference.seconds = 0, 0.0  # the warm-up is not counted
    mt = mtnet_rate(torch, device, args.grid, args.channels, args.res_units, args.batch,
                    args.epochs, args.n_volumes, bf16, args.compile, reference=reference)
    unet = reference.result()
    if device.type == "cuda":
        unet["peak_memory_gib_with_mtnet"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
    eprint(f"[gpu_train] UNet: {unet['volumes_per_s']:.1f} volumes/s, "
           f"MTnet: {mt['volumes_per_s']:.1f} volumes/s")
    ratio = mt["volumes_per_s"] / unet["volumes_per_s"]
    # on a CPU with one thread, the ratio of process CPU times is the steadier measure
    cpu_ratio = mt["volumes_per_cpu_s"] / unet["volumes_per_cpu_s"]
    return {"mode": "throughput", "grid": args.grid, "channels": list(args.channels),
            "res_units": args.res_units, "batch": args.batch, "bf16": bf16 and device.type == "cuda",
            "compile": args.compile, "unet": unet, "mtnet": mt, "ratio": round(ratio, 3),
            "ratio_cpu_time": round(cpu_ratio, 3),
            "goal": GOAL, "floor": FLOOR, "met_goal": ratio >= GOAL, "met_floor": ratio >= FLOOR}


# --------------------------------------------------------------------------- one training


def load_bundle(path: Path) -> dict:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        image = z["image"]
        image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        return {"crops": {"image": image, "tumor": z["tumor"].astype(np.uint8),
                          "liver": z["tumor"].astype(np.uint8), "patient_id": z["patient_id"]},
                "clinical": z["clinical"].astype(np.float64), "names": [str(n) for n in z["names"]],
                "y": z["y"].astype(np.float64), "strata": z["strata"].astype(str)}


def synthetic_bundle(torch, n, grid, n_factors, seed=3) -> dict:
    import numpy as np

    d = random_crops(torch, n, grid, torch.device("cpu"), seed=seed, n_factors=n_factors)
    return {"crops": {"image": d["image"][:, 0].numpy(), "tumor": d["tumor"][:, 0].numpy(),
                      "liver": np.ones_like(d["tumor"][:, 0].numpy()),
                      "patient_id": np.array([f"S-{i:04d}" for i in range(n)])},
            "clinical": d["clinical"].double().numpy(), "names": [f"f{j}" for j in range(n_factors)],
            "y": d["y"].double().numpy(), "strata": np.array(["A", "B"] * (n // 2) + ["A"] * (n % 2))}


def run_train(args, torch, device) -> dict:
    import numpy as np

    from mtnet.model.mtnet.api import train_mtnet

    if args.bundle:
        data = load_bundle(Path(args.bundle))
        source = str(args.bundle)
    else:
        data = synthetic_bundle(torch, args.synthetic, args.grid, args.n_factors)
        source = f"synthetic {args.synthetic} crops of {args.grid}^3"
    settings = mtnet_settings(args.grid, args.channels, args.res_units, args.batch, args.epochs,
                              args.compile, not args.no_bf16)
    settings.update({"patience": args.patience, "min_epochs": min(args.epochs, args.min_epochs)})
    if args.threads:
        settings["threads"] = args.threads
    with tempfile.TemporaryDirectory() as work:
        sync(torch, device)
        t0 = time.perf_counter()
        model = train_mtnet("Model-CR-DR", data["crops"], data["clinical"], data["names"],
                            data["y"], data["strata"], settings, seed=args.seed, device=device,
                            workdir=work)
        sync(torch, device)
        wall = time.perf_counter() - t0
    hist = model.history
    vols = model.info["n_train"]
    steps = math.ceil(vols / args.batch)
    return {"mode": "train", "source": source, "patients": int(len(data["y"])),
            "grid": list(model.grid), "train_wall_s": round(wall, 2), "epochs_run": model.info["epochs_run"],
            "best_epoch": model.info["best_epoch"], "best_inner_auc": model.info["best_inner_auc"],
            "median_epoch_s": float(np.median(hist["seconds"])),
            "train_volumes_per_s": float(model.info["epochs_run"] * steps * args.batch / hist["seconds"].sum()),
            "parameters": model.info["parameters"]}


def run_pack(args) -> dict:
    import numpy as np
    import pandas as pd

    from mtnet.model.mtnet.data import load_crops

    labels = pd.read_csv(args.labels, sep="\t", dtype={"patient_id": str, "center": str},
                         na_values=["NA"], keep_default_na=False)
    factors = [c for c in labels.columns if c not in ("patient_id", "center", "mvi")]
    crops = load_crops(args.roi, labels["patient_id"].tolist(),
                       grid=(args.grid,) * 3 if args.grid else None)
    np.savez_compressed(
        args.out, image=np.round(crops["image"] * 255).astype(np.uint8), tumor=crops["tumor"],
        patient_id=crops["patient_id"], clinical=labels[factors].to_numpy(float),
        names=np.array(factors, dtype=str), y=labels["mvi"].to_numpy(float),
        strata=labels["center"].to_numpy(str))
    return {"mode": "pack", "out": str(args.out), "patients": int(len(labels)),
            "bytes": os.path.getsize(args.out), "factors": factors}


# --------------------------------------------------------------------------- main


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", nargs="?", default="throughput", choices=["throughput", "train", "pack"])
    p.add_argument("--device", default="auto", help="cuda | cpu | auto")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, a few steps (CPU test)")
    p.add_argument("--grid", type=int, default=None)
    p.add_argument("--channels", default=None, help="comma-separated widths, e.g. 16,32,64,128,256")
    p.add_argument("--res-units", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--warmup", type=int, default=10, help="untimed UNet steps")
    p.add_argument("--n-volumes", type=int, default=256, help="MTnet's resident training set")
    p.add_argument("--epochs", type=int, default=5, help="MTnet epochs (the first is not timed)")
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile both networks")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch)")
    p.add_argument("--bundle", default=None, help="train: an .npz made by pack")
    p.add_argument("--synthetic", type=int, default=281, help="train: generated crops")
    p.add_argument("--n-factors", type=int, default=20)
    p.add_argument("--patience", type=int, default=30)
    p.add_argument("--min-epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=20211028)
    p.add_argument("--roi", nargs="*", default=[], help="pack: roi folders")
    p.add_argument("--labels", default=None, help="pack: TSV patient_id, center, mvi, factors...")
    p.add_argument("--out", default="bundle.npz", help="pack: the bundle to write")
    p.add_argument("--wheels", default=str(REPO / ".whl"))
    p.add_argument("--timeout", type=float, default=540.0, help="watchdog, seconds")
    args = p.parse_args(argv)
    base = dict(PAPER)
    if args.smoke:
        base.update(SMOKE)
        args.warmup = SMOKE["warmup"]
        args.n_volumes, args.epochs = SMOKE["n_volumes"], SMOKE["epochs"]
        args.synthetic, args.n_factors = SMOKE["synthetic"], SMOKE["n_factors"]
        args.patience, args.min_epochs = 0, 0
    args.grid = args.grid or base["grid"]
    args.channels = tuple(int(c) for c in args.channels.split(",")) if args.channels else base["channels"]
    args.res_units = args.res_units if args.res_units is not None else base["res_units"]
    args.batch = args.batch or base["batch"]
    return args


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    # the watchdog: a hung CUDA call or deadlock ends the process with every thread's stack
    faulthandler.dump_traceback_later(args.timeout, exit=True)
    started = time.perf_counter()
    try:
        import torch

        if args.mode != "pack":
            device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                                  else "cpu" if args.device == "auto" else args.device)
            if device.type == "cuda" and not torch.cuda.is_available():
                raise RuntimeError(f"device {args.device!r} asked for, but torch sees no GPU")
        source = import_monai(Path(args.wheels))
        if args.mode == "pack":
            result = run_pack(args)
        else:
            if args.threads:
                torch.set_num_threads(args.threads)
            run = run_throughput if args.mode == "throughput" else run_train
            result = run(args, torch, device)
            result["machine"] = machine(torch, device)
        result.update({"status": "ok", "smoke": args.smoke, "monai": source,
                       "wall_s": round(time.perf_counter() - started, 2)})
        print(json.dumps(result, indent=2, default=str))
        return 0
    except BaseException as err:  # noqa: BLE001 - every failure must be loud and in the JSON
        if isinstance(err, SystemExit) and err.code in (0, None):
            raise
        print(json.dumps({"status": "error", "mode": args.mode, "error": f"{type(err).__name__}: {err}",
                          "traceback": traceback.format_exc()}, indent=2))
        eprint(traceback.format_exc())
        return 1
    finally:
        faulthandler.cancel_dump_traceback_later()


if __name__ == "__main__":
    sys.exit(main())
