"""Liver stage: seconds per patient on one core for each backend, against the goals.

``stage``: the liver stage per patient (mtnet.liver.segment_center's per-patient work:
reading, the backend, joining the tumors, writing, the QC's Dice and surface distance
against the generator's mask) and its fixed cost (QC table, montage), on synthetic `demo`
patients ingested at 1.5 mm, one core (bench/cohort.py): CPU seconds (what an idle core
needs; the machine may be shared) and wall seconds. Goals (issue 12): ``provided`` <=
0.5 s, ``classical`` <= 2 s per patient.

``classical_example_ct``: classical.segment alone on TotalSegmentator's example CT at
1.5 mm (../shared/data; the phantom where absent). ``unet_inference``: the default
network (weights do not change its cost) with 2 torch threads.

``parallel_2_cores``: the classical segmentation of the n CTs one after the other, on 2
threads and on 2 forked processes (why the stages map patients on threads).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "bench")]
SHARED = Path(os.environ.get("MTNET_SHARED_DATA", REPO.parent / "shared" / "data"))
GOAL_S_PER_PATIENT = {"provided": 0.5, "classical": 2.0}
N_PATIENTS = int(os.environ.get("MTNET_BENCH_PATIENTS", "6"))


def _ct() -> tuple[sitk.Image, str]:
    from mtnet import imaging

    path = SHARED / "totalsegmentator_example_ct" / "example_ct.nii.gz"
    if path.exists():
        img = imaging.reorient(sitk.ReadImage(str(path)))
        return imaging.resample_hu(img, imaging.spacing_grid(img, 1.5)), "totalsegmentator example_ct at 1.5 mm"
    sys.path.insert(0, str(REPO / "tests"))
    from liver_phantom import abdomen

    return abdomen(1.5, seed=0)[0], "test phantom at 1.5 mm"


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(sorted(times)[len(times) // 2], 3)


def _segment_file(path: str) -> int:
    from mtnet.liver import classical

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    return int(sitk.GetArrayFromImage(classical.segment(sitk.ReadImage(path))).sum())


def _parallel(images: list[str]) -> dict:
    import multiprocessing

    out = {}
    start = time.perf_counter()
    [_segment_file(p) for p in images]
    out["serial_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_segment_file, images))
    out["threads_2_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        list(pool.map(_segment_file, images))
    out["processes_2_fork_s"] = round(time.perf_counter() - start, 2)
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out


def stage(tmp: Path, inputs: dict, backend: str) -> dict:
    from cohort import one_core, per_patient

    from mtnet.liver import segment_center

    def run_center() -> None:
        out = tmp / f"liver-{backend}"
        outputs = {"masks": str(out / "masks"), "qc": str(out / "qc.tsv"),
                   "montage": str(out / "montage.png")}
        segment_center("YPH", backend, inputs, outputs, {}, threads=1)

    run_center()  # imports and first-call costs out of the timing
    with one_core():
        result = per_patient(run_center)
    goal = GOAL_S_PER_PATIENT[backend]
    result.update(goal_s_per_patient=goal, met=result["cpu_s_per_patient"] <= goal,
                  met_wall=result["wall_s_per_patient"] <= goal)
    return result


def run(repeats: int = 3) -> dict:
    import torch
    from cohort import ingested_center

    from mtnet.config import section
    from mtnet.liver import classical, unet

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        inputs = ingested_center(tmp, N_PATIENTS)
        backends = {b: stage(tmp, inputs, b) for b in ("provided", "classical")}
        images = sorted(str(p) for p in Path(inputs["images"]).glob("*.nii.gz"))
        parallel = _parallel(images)

    image, what = _ct()
    classical_s = _median_time(lambda: classical.segment(image), repeats)
    cfg = section("liver")["unet"]
    torch.manual_seed(0)
    model = unet.LoadedModel(unet.build_model(cfg["channels"]).eval(),
                             {k: cfg[k] for k in ("spacing_mm", "crop", "channels", "hu_window")}, 2)
    unet_s = _median_time(lambda: unet.predict(model, image), repeats)
    return {
        "stage": {"data": f"synthetic demo YPH, {N_PATIENTS} patients ingested at 1.5 mm, one core",
                  **backends},
        "classical_example_ct": {"ct": what, "size_xyz": list(image.GetSize()),
                                 "seconds": classical_s, "threads": 1},
        "unet_inference": {"seconds": unet_s, "threads": 2},
        "parallel_2_cores": {"what": f"classical.segment of {len(images)} CTs", **parallel},
        "met": all(b["met"] for b in backends.values()),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
