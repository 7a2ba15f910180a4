"""MTnet on this CPU: wall time per training at the ``tiny`` and ``cpu`` sizes, and MTnet's
throughput against a plain MONAI UNet of the same backbone (bench/gpu_train.py's measure,
at a small size).

Trainings: ``N_PATIENTS`` crops of 96^3 (the tumor stage's grid; random crops of the real
shape, no signal, made by ``gpu_train.random_crops``) resampled to each size's grid, two
strata, ~12% events; every variant once with the size's own schedule (early stopping
on, so these are typical, not worst-case, times: ``epochs_run`` and ``seconds_per_epoch``
give the worst case, ``epochs`` x ``seconds_per_epoch``). ``DEMO`` extrapolates to the
demo's trainings (5 variants x 5 folds of the demo's 112 training patients).

Threads: ``THREADS`` torch threads per training (1: on a shared 2-core machine two jobs of
one thread each beat one job of two, whose OpenMP barriers stall when a neighbour runs).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
N_PATIENTS = 100
THREADS = 1
DEMO = {"train_patients": 112, "folds": 5, "parallel_jobs": 2}
RATIO_SIZE = {"grid": 32, "channels": (8, 16, 32, 64), "res_units": 1, "batch": 8,
              "n_volumes": 48, "epochs": 4, "warmup": 3}


def _cohort(torch):
    import numpy as np

    sys.path.insert(0, str(BENCH))
    import gpu_train

    d = gpu_train.random_crops(torch, N_PATIENTS, 96, torch.device("cpu"), seed=5, n_factors=20)
    return {"crops": {"image": d["image"][:, 0].numpy(), "tumor": d["tumor"][:, 0].numpy(),
                      "liver": np.ones_like(d["tumor"][:, 0].numpy())},
            "clinical": d["clinical"].double().numpy(), "names": [f"f{j}" for j in range(20)],
            "y": d["y"].double().numpy(),
            "strata": np.array(["A", "B"] * (N_PATIENTS // 2))}


def _through_view(crops: dict, size: str) -> dict:
    """The crops as the size's field of view shows them (``load_crops`` does this for the
    workflow's crops; these random ones are taken to be on a 2 mm grid)."""
    import numpy as np

    from mtnet.model.mtnet.data import tumor_view
    from mtnet.model.mtnet.variants import resolve, view_name

    r = resolve("Model-DR", {"size": size})
    out = dict(crops)
    if r["view"] == "tumor":
        views = [tumor_view(i, t, l, (2.0, 2.0, 2.0), r["grid"], r["view_margin_mm"])
                 for i, t, l in zip(crops["image"], crops["tumor"], crops["liver"])]
        out.update({k: np.stack([v[j] for v in views]) for j, k in enumerate(("image", "tumor", "liver"))})
    out["view"] = np.full(len(crops["image"]), view_name(r["view"], r["view_margin_mm"]))
    return out


def trainings(torch) -> dict:
    from mtnet.model.mtnet import VARIANTS, PRESETS, train_mtnet

    data = _cohort(torch)
    out = {}
    for size in ("tiny", "cpu"):
        out[size] = {}
        crops = _through_view(data["crops"], size)
        for variant in VARIANTS:
            t0 = time.perf_counter()
            model = train_mtnet(variant, crops, data["clinical"], data["names"],
                                data["y"], data["strata"], {"size": size, "threads": THREADS},
                                seed=1)
            wall = time.perf_counter() - t0
            out[size][variant] = {
                "wall_s": round(wall, 2), "epochs_run": model.info["epochs_run"],
                "seconds_per_epoch": round(float(model.history["seconds"].median()), 3),
                "parameters": model.info["parameters"]}
        epochs = PRESETS[size]["epochs"]
        fold_scale = DEMO["train_patients"] * (DEMO["folds"] - 1) / DEMO["folds"] / N_PATIENTS
        worst = sum(r["seconds_per_epoch"] * epochs for r in out[size].values()) * fold_scale
        typical = sum(r["wall_s"] for r in out[size].values()) * fold_scale
        out[size]["demo_estimate_min"] = {
            "typical": round(typical * DEMO["folds"] / DEMO["parallel_jobs"] / 60, 1),
            "worst_case_no_early_stopping": round(worst * DEMO["folds"] / DEMO["parallel_jobs"] / 60, 1)}
    return out


def ratio(torch) -> dict:
    sys.path.insert(0, str(BENCH))
    import gpu_train

    r = RATIO_SIZE
    args = gpu_train.parse(["throughput", "--device", "cpu", "--grid", str(r["grid"]),
                            "--channels", ",".join(map(str, r["channels"])),
                            "--res-units", str(r["res_units"]), "--batch", str(r["batch"]),
                            "--n-volumes", str(r["n_volumes"]), "--epochs", str(r["epochs"]),
                            "--warmup", str(r["warmup"])])
    res = gpu_train.run_throughput(args, torch, torch.device("cpu"))
    return {k: res[k] for k in ("grid", "channels", "batch", "ratio", "ratio_cpu_time")} | {
        "unet_volumes_per_s": round(res["unet"]["volumes_per_s"], 2),
        "mtnet_volumes_per_s": round(res["mtnet"]["volumes_per_s"], 2),
        "unet_volumes_per_cpu_s": round(res["unet"]["volumes_per_cpu_s"], 2),
        "mtnet_volumes_per_cpu_s": round(res["mtnet"]["volumes_per_cpu_s"], 2)}


def run() -> dict:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        result = {"threads": THREADS, "n_patients": N_PATIENTS, "ratio_small_size": ratio(torch),
                  "trainings": trainings(torch)}
    finally:
        torch.set_num_threads(previous)
    r = result["ratio_small_size"]["ratio_cpu_time"]
    result["goal"] = {"ratio_cpu_time": 0.8, "demo_minutes": 5.0}
    result["met"] = bool(r >= 0.8 and result["trainings"]["cpu"]["demo_estimate_min"]["typical"] <= 5.0)
    return result


if __name__ == "__main__":
    import json

    sys.path.insert(0, str(BENCH.parent / "src"))
    print(json.dumps(run(), indent=2))
