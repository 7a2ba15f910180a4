"""The workflow up to the MTnet crops (synth, ingest, liver, tumor) on 2 cores, for a preset.

``python bench/bench_workflow.py PRESET [--scale S] [--cores N] [--keep DIR]`` runs
``snakemake --cores N`` for every center's ``results/tumor/{center}/lesions.tsv`` in a
fresh folder, with the default config's five centers (``tiny``: config/tiny.yaml's three)
set to PRESET and each center's number of patients multiplied by S. It reports the wall
time against the goal (issue 12: ``paper`` <= 10 min, ``benchmark`` <= 90 min on 2 cores),
the seconds and core-seconds (seconds x threads) of each rule's jobs (from Snakemake's job
start and finish times) with their share and per patient, the longest job, the CPU
seconds of the whole run (half of them: what 2 idle cores need at least, on a shared
machine), and the MB per patient each stage leaves on disk.
``run()`` (bench/run_all.py) takes the preset and scale from MTNET_BENCH_WORKFLOW_PRESET
(default ``tiny``) and MTNET_BENCH_WORKFLOW_SCALE (default 1): the large presets take
from minutes to more than an hour.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
GOAL_S = {"paper": 600.0, "benchmark": 5400.0}
STAGES = ("synth", "ingest", "liver", "tumor")
# Snakemake's job log: "[Mon Dec  1 10:09:56 2026]" then "rule X:" ... "jobid: N", and
# "[...]" then "Finished jobid: N (Rule: X)"
_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?rule (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_THREADS = re.compile(r"^\s+threads: (\d+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def bench_config(preset: str, scale: float = 1.0) -> dict:
    """The default config's centers (tiny: config/tiny.yaml's) on ``preset``, each
    center's patients multiplied by ``scale``."""
    from mtnet.synth import center_preset

    base = "tiny.yaml" if preset == "tiny" else "config.yaml"
    config = yaml.safe_load((REPO / "config" / base).read_text())
    config = copy.deepcopy(config)
    for name, center in config["centers"].items():
        synthetic = {"preset": preset}
        if scale != 1.0:
            n = center_preset({"preset": preset, "center": name, "role": center["role"]}).n_patients
            synthetic["n_patients"] = max(4, int(round(n * scale)))
        center["synthetic"] = synthetic
    return config


def job_seconds(log_text: str) -> list[dict]:
    """Every job of a Snakemake log: rule, threads, start, end (seconds since the first
    stamp)."""
    stamp, rule, last, started, jobs = None, None, None, {}, []
    for line in log_text.splitlines():
        m = _STAMP.match(line.strip())
        if m:
            stamp = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            continue
        m = _RULE.match(line.strip())
        if m:
            rule = m.group(1)
            continue
        m = _JOBID.match(line)
        if m and rule is not None:
            last = m.group(1)
            started[last] = {"rule": rule, "start": stamp, "threads": 1}
            rule = None
            continue
        m = _THREADS.match(line)
        if m and last in started:
            started[last]["threads"] = int(m.group(1))
            continue
        m = _FINISHED.match(line.strip())
        if m and m.group(1) in started:
            jobs.append(dict(started.pop(m.group(1)), end=stamp))
    if jobs:
        first = min(j["start"] for j in jobs)
        for j in jobs:
            j["start"], j["end"] = ((j[k] - first).total_seconds() for k in ("start", "end"))
    return jobs


def _megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run_workflow(preset: str, scale: float = 1.0, cores: int = 2, keep: Path | None = None) -> dict:
    config = bench_config(preset, scale)
    centers = list(config["centers"])
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix=f"bench-workflow-{preset}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    configfile = workdir / "bench_config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    targets = [f"results/tumor/{c}/lesions.tsv" for c in centers]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"),
           "-d", str(workdir), "--cores", str(cores), "--configfile", str(configfile),
           "--replace-workflow-config", *targets]
    load_before = os.getloadavg()[0]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    log = done.stdout + done.stderr
    (workdir / "bench_snakemake.log").write_text(log)
    try:
        if done.returncode != 0:
            raise RuntimeError(f"snakemake failed ({done.returncode}):\n{log[-4000:]}")
        results = workdir / "results"
        patients = sum(len(list((results / "ingest" / c / "images").glob("*.nii.gz")))
                       for c in centers)
        jobs = job_seconds(log)
        per_rule = {}
        for rule in sorted({j["rule"] for j in jobs}):
            mine = [j for j in jobs if j["rule"] == rule]
            total = sum(j["end"] - j["start"] for j in mine)
            cores_s = sum((j["end"] - j["start"]) * j["threads"] for j in mine)
            per_rule[rule] = {"jobs": len(mine), "threads": max(j["threads"] for j in mine),
                              "job_s": round(total, 1), "core_s": round(cores_s, 1),
                              "job_s_per_patient": round(total / patients, 3),
                              "longest_job_s": round(max(j["end"] - j["start"] for j in mine), 1)}
        busy = sum(r["core_s"] for r in per_rule.values())
        for r in per_rule.values():
            r["share_of_core_s"] = round(r["core_s"] / busy, 3) if busy else None
        longest = max(jobs, key=lambda j: j["end"] - j["start"]) if jobs else None
        disk = {stage: round(_megabytes(results / stage) / patients, 3) for stage in STAGES}
        out = {
            "preset": preset, "scale": scale, "cores": cores, "centers": centers,
            "patients": patients, "wall_s": round(wall, 1),
            "wall_s_per_patient": round(wall / patients, 3),
            "rules": per_rule,
            "core_s_total": round(busy, 1),
            # the cores the jobs held, over what the run had
            "core_utilisation": round(busy / (cores * wall), 3) if wall else None,
            # CPU of every process of the run (Snakemake's included): on a shared machine,
            # half of it is what 2 otherwise idle cores would need at least
            "cpu_s": round(cpu, 1),
            "ideal_wall_s": round(cpu / cores, 1),
            "longest_job": ({"rule": longest["rule"], "seconds": longest["end"] - longest["start"]}
                            if longest else None),
            "mb_per_patient": {**disk, "all": round(sum(disk.values()), 3)},
            "load_average_1min_before": round(load_before, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2),
        }
        if preset in GOAL_S and scale == 1.0:
            out.update(goal_wall_s=GOAL_S[preset], met=wall <= GOAL_S[preset],
                       met_on_idle_cores=cpu / cores <= GOAL_S[preset])
        return out
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def run() -> dict:
    preset = os.environ.get("MTNET_BENCH_WORKFLOW_PRESET", "tiny")
    scale = float(os.environ.get("MTNET_BENCH_WORKFLOW_SCALE", "1"))
    return run_workflow(preset, scale)


if __name__ == "__main__":
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", nargs="?", default="tiny")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    result = run_workflow(args.preset, args.scale, args.cores, args.keep)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
