"""The report stage of the demo: seconds to redraw every figure and table, fill the
checklist and write the manifest (the report rules forced on a finished `make demo`), to
build results/report.html, and to audit the run.

Needs a finished demo in the repository (`make demo`), or MTNET_BENCH_RUN=<run folder>
(the folder holding results/ of a run of config/config.yaml). The rules' outputs are
rewritten with the same bytes (the run is deterministic); `mtnet audit` must still say OK.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT_RULES = [
    "figures",
    "stats_tables",
    "ceilings",
    "table1_html",
    "training_figure",
    "tumor_montage",
    "checklist",
    "manifest",
]


def run(cores: int = 2) -> dict:
    folder = Path(os.environ.get("MTNET_BENCH_RUN", REPO))
    manifest = folder / "results" / "provenance" / "manifest.json"
    if not manifest.exists():
        raise RuntimeError(f"no finished demo in {folder}: run `make demo` first")
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PATH=f"{bin_dir}:{os.environ['PATH']}")
    snakemake = [str(bin_dir / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(folder)]
    load = os.getloadavg()

    start = time.perf_counter()
    subprocess.run(
        [*snakemake, "--cores", str(cores), "--forcerun", *REPORT_RULES, "--quiet"],
        check=True, capture_output=True, env=env, cwd=folder,
    )
    stage_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [*snakemake, "--report", str(Path(tmp) / "report.html")],
            check=True, capture_output=True, env=env, cwd=folder,
        )
        report_s = time.perf_counter() - start
        report_mb = (Path(tmp) / "report.html").stat().st_size / 1e6

    start = time.perf_counter()
    audit = subprocess.run(
        [str(bin_dir / "mtnet"), "audit", str(folder / "results")],
        capture_output=True, text=True, env=env, cwd=folder,
    )
    audit_s = time.perf_counter() - start

    record = json.loads(manifest.read_text())
    per_rule = defaultdict(lambda: {"jobs": 0, "seconds": 0.0})
    for job in record["rule_times"].values():
        if job["rule"] in REPORT_RULES:
            per_rule[job["rule"]]["jobs"] += 1
            per_rule[job["rule"]]["seconds"] = round(per_rule[job["rule"]]["seconds"] + job["seconds"], 2)
    return {
        "cores": cores,
        "load_average_before": [round(x, 2) for x in load],
        "report_rules_wall_s": round(stage_s, 1),
        "report_rules_job_s": dict(per_rule),
        "snakemake_report_s": round(report_s, 1),
        "report_html_mb": round(report_mb, 1),
        "audit_s": round(audit_s, 1),
        "audit": audit.stdout.strip().splitlines()[-1] if audit.stdout.strip() else audit.stderr,
        "audit_ok": audit.returncode == 0,
        "outputs_hashed": len(record["outputs"]),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
