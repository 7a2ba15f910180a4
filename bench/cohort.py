"""Synthetic patients for the stage benchmarks, made and ingested as the workflow does.

:func:`ingested_center` generates a center of the `demo` preset (mtnet.synth) and ingests
it onto the default grid (mtnet.io.ingest_center: 1.5 mm, or the scanner's spacing of an
axis it sampled more coarsely), so that the liver and tumor
benchmarks time the stage on the images the workflow gives them. :func:`cpu_and_wall`
and :func:`per_patient` time a stage's run split into its patients (the per-patient
function each stage maps over a center) and its fixed cost (tables, the montage).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

SEED = 20211028


def one_core():
    """Context: this process (and its threads) on one CPU."""

    @contextlib.contextmanager
    def pinned():
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})
        try:
            yield
        finally:
            if affinity:
                os.sched_setaffinity(0, affinity)

    return pinned()


def cpu_and_wall(fn) -> tuple[float, float]:
    """(process CPU seconds, wall seconds) of ``fn()``: on a shared machine the CPU time is
    what one idle core would need, the wall time what this run took."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.process_time() - cpu, time.perf_counter() - start


@contextlib.contextmanager
def timed_patients():
    """Time every patient of the stages' per-patient map (mtnet.imaging.map_patients, as the
    stages imported it): yields a list that fills with (CPU s, wall s) per patient."""
    import importlib

    times: list[tuple[float, float]] = []
    modules = [importlib.import_module(m) for m in ("mtnet.imaging", "mtnet.liver", "mtnet.tumor")]
    original = modules[0].map_patients

    def timed(fn, patients, workers=1, **kwargs):
        def one(pid):
            cpu, start = time.thread_time(), time.perf_counter()
            out = fn(pid)
            times.append((time.thread_time() - cpu, time.perf_counter() - start))
            return out

        return original(one, patients, workers, **kwargs)

    for module in modules:
        module.map_patients = timed
    try:
        yield times
    finally:
        for module in modules:
            module.map_patients = original


def per_patient(run) -> dict:
    """A stage's run on one core, split into its patients (the per-patient function: mean
    and slowest, CPU and wall) and the rest (the stage's fixed cost: tables, the montage)."""
    with timed_patients() as times:
        cpu, wall = cpu_and_wall(run)
    n = len(times)
    cpus, walls = [c for c, _ in times], [w for _, w in times]
    return {"n_patients": n,
            "cpu_s_per_patient": round(sum(cpus) / n, 3), "cpu_s_slowest": round(max(cpus), 3),
            "wall_s_per_patient": round(sum(walls) / n, 3),
            "fixed_cpu_s": round(cpu - sum(cpus), 3), "total_wall_s": round(wall, 2)}


def ingested_center(tmp: Path, n: int, center: str = "YPH", role: str = "train",
                    preset: str = "demo") -> dict:
    """Generate and ingest ``n`` patients; paths of the stages' inputs (ingest folders,
    clinical table, the generator's truth for the liver QC)."""
    from mtnet.io import ingest_center
    from mtnet.synth import write_center

    root = Path(tmp) / center
    data, truth = root / "synth" / "data", root / "synth" / "truth"
    write_center({"preset": preset, "center": center, "role": role, "n_patients": n}, SEED,
                 data, truth)
    out = root / "ingest"
    outputs = {k: str(out / k) for k in ("images", "tumor", "liver")}
    outputs.update(clinical=str(out / "clinical.tsv"), qc=str(out / "qc.tsv"),
                   montage=str(out / "qc_montage.png"))
    ingest_center(center, {"data": str(data)}, outputs, {"center": {}, "ingest": {}}, threads=2)
    return {"images": outputs["images"], "tumor": outputs["tumor"], "provided": outputs["liver"],
            "clinical": outputs["clinical"], "truth": str(truth), "root": str(root)}


def megabytes(folder) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6
