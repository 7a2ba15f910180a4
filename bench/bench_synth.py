"""Generation time of the synthetic presets on 2 cores (goal: `demo` ≤ 60 s).

Centres are generated in 2 worker processes, as `snakemake --cores 2` runs the `synth`
rules. The machine may be shared: ``cpu_s`` (process CPU time) and ``ideal_wall_2cores_s``
tell what two idle cores need. `paper` is measured only when MTNET_BENCH_PAPER=1 (it takes minutes).
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


def run() -> dict:
    presets = ["tiny", "demo"] + (["paper"] if os.environ.get("MTNET_BENCH_PAPER") == "1" else [])
    return {preset: time_preset(preset) for preset in presets}


if __name__ == "__main__":
    print(run())
