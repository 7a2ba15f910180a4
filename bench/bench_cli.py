"""`mtnet --help` and `mtnet --version`: what a user waits for before anything happens (the
subcommands import their stage only when they run)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 1.0


def _median(args, repeats: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mtnet.cli", *args], check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return round(sorted(times)[len(times) // 2], 3)


def run(repeats: int = 5) -> dict:
    help_s, version_s = _median(["--help"], repeats), _median(["--version"], repeats)
    return {"help_median_s": help_s, "version_median_s": version_s, "goal_s": GOAL_S,
            "met": max(help_s, version_s) < GOAL_S}


if __name__ == "__main__":
    print(run())
