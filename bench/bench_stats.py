"""The whole stats stage for the paper's cohort size: 366 patients (four training centers,
281; one external center, 85) x 6 models of synthetic predictions. One fresh process per
engine runs evaluate_center for the external center and for pooled_train, then Table 1, as
the workflow's three jobs would; the R engine's time includes R's start-up (goal <= 10 s)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 10.0
CENTERS = {"YPH": 71, "ZPH": 70, "SPH": 70, "NFH": 70, "ZCPH": 85}
MODELS = [
    "Model-CR-DR",
    "Model-DR",
    "Model-CR",
    "Model-NoSeg-CR-DR",
    "Model-Logistic-CR-DR",
    "Model-Clinical-LR",
]
SIGNAL = [2.5, 1.0, 1.6, 1.8, 1.7, 1.2]

STAGE = """
import json, sys, time
start = time.perf_counter()
from mtnet.stats.analyses import COLUMNS, evaluate_center
from mtnet.stats.table1 import write_table1
job = json.load(open(sys.argv[1]))
for center in ("ZCPH", "pooled_train"):
    members = job["train"] if center == "pooled_train" else ["ZCPH"]
    evaluate_center(
        center,
        predictions=[job["preds"][c][m] for m in job["models"] for c in members],
        training_predictions=[job["preds"][c][m] for m in job["models"] for c in job["train"]],
        tables=[job["tables"][c] for c in members],
        models=job["models"],
        outputs={k: f"{job['out']}/{center}/{k}.tsv" for k in COLUMNS},
        settings={"engine": job["engine"]},
    )
write_table1([job["tables"][c] for c in job["train"]], [job["tables"]["ZCPH"]], ["ZCPH"],
             f"{job['out']}/table1.tsv", engine=job["engine"])
print(json.dumps({"in_process_s": time.perf_counter() - start}))
"""


def make_inputs(root: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO / "src"))
    from stats_synthetic import clinical_table, predictions, write_table

    tables, preds = {}, {}
    for i, (center, n) in enumerate(CENTERS.items()):
        t = clinical_table(center, n, seed=100 + i, event_rate=0.12)
        tables[center] = write_table(t, root / f"{center}.tsv")
        split = "external" if center == "ZCPH" else "apparent"
        preds[center] = {}
        for j, (model, s) in enumerate(zip(MODELS, SIGNAL)):
            path = root / center / f"{model}.tsv"
            path.parent.mkdir(exist_ok=True)
            predictions(t, model, s, 1000 * i + j, split).to_csv(path, sep="\t", index=False)
            preds[center][model] = str(path)
    return {
        "tables": tables,
        "preds": preds,
        "models": MODELS,
        "train": [c for c in CENTERS if c != "ZCPH"],
    }


def stage(job: dict, engine: str, root: Path) -> dict:
    job = {**job, "engine": engine, "out": str(root / f"out_{engine}")}
    job_file = root / f"job_{engine}.json"
    job_file.write_text(json.dumps(job))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", STAGE, str(job_file)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    inner = json.loads(res.stdout.strip().splitlines()[-1])
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "in_process_s": round(inner["in_process_s"], 3),
    }


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        job = make_inputs(root)
        r = stage(job, "r", root)
        py = stage(job, "python", root)
    return {
        "patients": sum(CENTERS.values()),
        "models": len(MODELS),
        "r_engine_s": r["wall_s"],
        "r_engine_cpu_s": r["cpu_s"],
        "r_engine_in_process_s": r["in_process_s"],
        "python_engine_s": py["wall_s"],
        "python_engine_cpu_s": py["cpu_s"],
        "python_engine_in_process_s": py["in_process_s"],
        "load_average_1min": round(os.getloadavg()[0], 2),
        "goal": f"R engine, whole stats stage with start-up <= {GOAL_S:g} s",
        "met": r["wall_s"] <= GOAL_S,
    }


if __name__ == "__main__":
    print(run())
