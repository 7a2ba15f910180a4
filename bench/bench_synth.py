"""Generation time of the synthetic presets on 2 cores (goal: `demo` ≤ 60 s), and per patient
on one core (goal: ≤ 1 s per NIfTI patient at a training scanner's resolution) with the disk
each patient takes.

Centres are generated in 2 worker processes, as `snakemake --cores 2` runs the `synth`
rules. The machine may be shared: ``cpu_s`` (process CPU time) and ``ideal_wall_2cores_s``
tell what two idle cores need. `paper` is measured only when MTNET_BENCH_PAPER=1 (it takes minutes).

Per patient: one process, OMP_NUM_THREADS=1, the `paper` preset's ZPH (NIfTI, 2.0 mm /
3 mm) and SPH (DICOM + DICOM-SEG, 2.0 mm / 3 mm, 15% arterial decoys), the table and the
imports warmed up first so that only the images and files are timed; ``cpu_s_per_patient``
is the one-core figure (the wall time counts other jobs on a shared machine).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CENTERS = {
    "tiny": {"TA": "train", "TB": "train", "TX": "external"},
    "demo": {"YPH": "train", "ZPH": "train", "SPH": "train", "NFH": "train", "ZCPH": "external"},
}
CENTERS["paper"] = CENTERS["demo"]
GOAL_S = {"demo": 60.0}
GOAL_S_PER_PATIENT = {"nifti": 1.0}
PER_PATIENT = {"nifti": "ZPH", "dicom": "SPH"}
N_PER_PATIENT = 12


def _one(args) -> tuple[str, float, float, int]:
    preset, center, role, out = args
    from mtnet.synth import write_center

    start, cpu = time.perf_counter(), time.process_time()
    truth = write_center({"preset": preset, "center": center, "role": role}, 7, Path(out) / "data", Path(out) / "truth")
    return center, time.perf_counter() - start, time.process_time() - cpu, len(truth)


def time_preset(preset: str, workers: int = 2) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(preset, c, r, str(Path(tmp) / c)) for c, r in CENTERS[preset].items()]
        start = time.perf_counter()
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_one, jobs))
        wall = time.perf_counter() - start
    cpu = [c for _, _, c, _ in results]
    out = {
        "wall_s": round(wall, 2),
        "cpu_s": round(sum(cpu), 2),
        # what 2 otherwise idle cores need: the larger of half the CPU time and the longest centre
        "ideal_wall_2cores_s": round(max(sum(cpu) / workers, max(cpu)), 2),
        "patients": sum(n for _, _, _, n in results),
        "per_center_wall_s": {c: round(t, 2) for c, t, _, _ in results},
        "per_center_cpu_s": {c: round(t, 2) for c, _, t, _ in results},
    }
    if preset in GOAL_S:
        out.update(goal_s=GOAL_S[preset], met=wall <= GOAL_S[preset],
                   met_on_idle_cores=out["ideal_wall_2cores_s"] <= GOAL_S[preset])
    return out


def _per_patient(fmt: str) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import highdicom  # noqa: F401  imports outside the timing
    import pydicom  # noqa: F401
    import sklearn.metrics  # noqa: F401

    from mtnet.synth import draw_center_table, write_center

    center = PER_PATIENT[fmt]
    settings = {"preset": "paper", "center": center, "role": "train", "n_patients": N_PER_PATIENT, "n_events": 2}
    draw_center_table(settings, 7)  # the ceilings' population draw, cached
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        write_center(settings, 7, Path(tmp) / "data", Path(tmp) / "truth")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - start
        size = {part: sum(f.stat().st_size for f in (Path(tmp) / part).rglob("*") if f.is_file()) / 1e6
                for part in ("data", "data/images", "truth")}
    out = {
        "center": center,
        "patients": N_PER_PATIENT,
        "cpu_s_per_patient": round(cpu / N_PER_PATIENT, 3),
        "wall_s_per_patient": round(wall / N_PER_PATIENT, 3),
        "mb_per_patient": round((size["data"] + size["truth"]) / N_PER_PATIENT, 2),
        "mb_per_patient_images": round(size["data/images"] / N_PER_PATIENT, 2),
        "mb_per_patient_truth": round(size["truth"] / N_PER_PATIENT, 3),
    }
    if fmt in GOAL_S_PER_PATIENT:
        out.update(goal_s_per_patient=GOAL_S_PER_PATIENT[fmt], met=out["cpu_s_per_patient"] <= GOAL_S_PER_PATIENT[fmt])
    return out


def per_patient(fmt: str) -> dict:
    """One-core seconds and MB per patient, in a fresh process (its own imports and threads)."""
    with ProcessPoolExecutor(1) as pool:
        return pool.submit(_per_patient, fmt).result()


def run() -> dict:
    presets = ["tiny", "demo"] + (["paper"] if os.environ.get("MTNET_BENCH_PAPER") == "1" else [])
    out = {preset: time_preset(preset) for preset in presets}
    out["per_patient"] = {fmt: per_patient(fmt) for fmt in PER_PATIENT}
    return out


if __name__ == "__main__":
    print(run())
