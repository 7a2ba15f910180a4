"""The delivery manifest (src/mtnet/io/manifest.py) on a 1,000-file delivery: what caching by
content costs when planning. A hospital's center of 1,000 DICOM-sized files (512 KiB each,
20 patient folders) is hashed cold (no stat cache: every file read), warm (the cache of the
last planning: stat only), and planned by `snakemake -n` twice (cold, then warm)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mtnet.io import manifest  # noqa: E402

N_FILES, FILE_BYTES, PATIENTS = 1000, 512 * 1024, 20


def delivery(root: Path) -> dict:
    rng = os.urandom
    images = root / "ct"
    for i in range(N_FILES):
        folder = images / f"H-{i % PATIENTS:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"IM{i:05d}").write_bytes(rng(FILE_BYTES))
    masks = root / "seg"
    masks.mkdir()
    table = root / "clinical.csv"
    table.write_text("patient_id\n" + "".join(f"H-{i:03d}\n" for i in range(PATIENTS)))
    return {"images": str(images), "tumor_masks": str(masks), "clinical": str(table)}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = delivery(tmp / "hospital")
        out, cache = tmp / "m" / "delivery.sha256", tmp / "m" / "cache.json"
        cold = timed(lambda: manifest.refresh(paths, out, cache))
        warm = timed(lambda: manifest.refresh(paths, out, cache))
        config = tmp / "hospital.yaml"
        center = {"role": "external", "source": "files", "image_format": "dicom", **paths}
        config.write_text(yaml.safe_dump({"centers": {"BIG": center}}))
        work = tmp / "work"
        work.mkdir()
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"),
               "-d", str(work), "-n", "--quiet", "all", "--configfile",
               str(REPO / "config" / "config.yaml"), str(config), "--", "results/ingest/BIG/qc.tsv"]
        def plan():
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise RuntimeError((done.stdout + done.stderr)[-2000:])

        plans = [timed(plan) for _ in range(2)]
        lines = len((work / "results" / "ingest" / "BIG" / "delivery.sha256").read_text().splitlines())
    return {
        "files": N_FILES, "megabytes": N_FILES * FILE_BYTES // 2**20, "manifest_lines": lines,
        "refresh_cold_s": cold, "refresh_warm_s": warm,
        "plan_cold_s": plans[0], "plan_warm_s": plans[1],
        "goal": "a warm planning adds well under a second to `snakemake -n`",
        "met": warm < 1.0,
    }


if __name__ == "__main__":
    print(run())
