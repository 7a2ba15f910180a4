"""Planning the default workflow (`snakemake -n`, five centers): start-up cost a user pays
on every invocation, config validation included."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(repeats: int = 3) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    snakemake = str(Path(sys.executable).parent / "snakemake")
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(
                [snakemake, "-s", str(REPO / "Snakefile"), "-d", tmp, "-n", "--quiet",
                 "--configfile", str(REPO / "config" / "config.yaml")],
                check=True, capture_output=True, env=env,
            )
            times.append(time.perf_counter() - start)
    return {"seconds": sorted(times), "median_s": round(sorted(times)[len(times) // 2], 3)}


if __name__ == "__main__":
    print(run())
