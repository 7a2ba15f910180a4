"""Run every benchmark in bench/ and write one JSON per benchmark under bench/results/.

A benchmark is a module ``bench/bench_<name>.py`` with ``run() -> dict``; the dict holds the
measurements and, where the project has one, the goal (``goal``) and whether it was met
(``met``). Usage: ``python bench/run_all.py [name ...]`` (default: all).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def run_one(path: Path) -> dict:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    # registered under its name so that worker processes can unpickle its functions
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    start = time.perf_counter()
    try:
        result = {"status": "ok", **module.run()}
    except Exception:
        result = {"status": "error", "error": traceback.format_exc()}
    result["wall_s"] = round(time.perf_counter() - start, 3)
    return result


def main(names: list[str]) -> int:
    sys.path[:0] = [str(BENCH.parent / "src"), str(BENCH)]
    RESULTS.mkdir(exist_ok=True)
    paths = sorted(BENCH.glob("bench_*.py"))
    if names:
        paths = [p for p in paths if p.stem.removeprefix("bench_") in names]
    failed = 0
    for path in paths:
        name = path.stem.removeprefix("bench_")
        print(f"[bench] {name} ...", flush=True)
        result = run_one(path)
        result.update(
            benchmark=name,
            date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            machine=machine(),
        )
        out = RESULTS / f"{name}.json"
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        failed += result["status"] != "ok"
        summary = {k: v for k, v in result.items() if k not in ("machine", "error", "date")}
        print(f"[bench] {name}: {json.dumps(summary, default=str)}")
        if result["status"] != "ok":
            print(result["error"], file=sys.stderr)
    print(f"[bench] {len(paths)} benchmarks, {failed} failed; results in {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
