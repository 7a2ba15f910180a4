"""The applet: seconds from upload to result for one patient on the CPU.

A model folder of a small tiny run is made first (the applet tests' configuration:
config/tiny.yaml with fewer patients and the DICOM + DICOM-SEG external center TY; a few
minutes), unless ``MTNET_BENCH_RESULTS`` names the ``results/`` folder of a run that has
``models/<model>`` and ``synth/TX``, ``synth/TY``. Then ``mtnet serve`` (one thread) gets
``repeats`` uploads of an external NIfTI patient (TX) and of an external DICOM zip +
DICOM-SEG patient (TY); each POST is timed by the client, upload to result page. The
stages' seconds of one in-process run (``mtnet.app.pipeline.score``) say where the time
goes. The machine's load average is recorded: these cores may be shared.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MODEL = "Model-Clinical-LR"
# the applet's smaller tiny cohort (one home for the test and the benchmark)
CONFIG = {**yaml.safe_load((REPO / "config" / "applet_tiny.yaml").read_text()), "models": [MODEL]}


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO / "src"),
                PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def _results() -> Path:
    given = os.environ.get("MTNET_BENCH_RESULTS")
    if given:
        return Path(given)
    work = Path(tempfile.mkdtemp(prefix="mtnet-bench-applet-"))
    (work / "applet.yaml").write_text(yaml.safe_dump(CONFIG))
    targets = [f"results/models/{MODEL}/model"]
    subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"),
                    "-d", str(work), "--configfile", str(REPO / "config" / "tiny.yaml"),
                    str(work / "applet.yaml"), "--replace-workflow-config", "--cores", "2",
                    *targets, "results/ingest/TX/clinical.tsv", "results/ingest/TY/clinical.tsv"],
                   check=True, capture_output=True, env=_env(), cwd=work, timeout=3600)
    return work / "results"


def _factors(results: Path, center: str, pid: str) -> dict:
    import pandas as pd

    from mtnet.io.clinical import read_table

    data = results / "synth" / center / "data"
    entry = yaml.safe_load((data / "center.yaml").read_text())
    table = read_table(data / entry["clinical"], entry.get("clinical_sheet"))
    row = table[table["patient_id"].astype(str) == pid].iloc[0]
    return {k: "" if pd.isna(v) else str(v) for k, v in row.items() if k != "patient_id"}


def _uploads(results: Path) -> dict:
    tx = results / "synth" / "TX" / "data"
    ty = results / "synth" / "TY" / "data"
    tx_pid = sorted(p.name.split(".")[0] for p in (tx / "images").iterdir())[0]
    ty_pid = sorted(p.name for p in (ty / "images").iterdir())[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted((ty / "images" / ty_pid).rglob("*")):
            if f.is_file():
                z.write(f, f.name)
    return {
        "nifti": (_factors(results, "TX", tx_pid), (tx / "images" / f"{tx_pid}.nii.gz").read_bytes(),
                  (tx / "tumor_masks" / f"{tx_pid}.nii.gz").read_bytes()),
        "dicom_zip": (_factors(results, "TY", ty_pid), buf.getvalue(),
                      (ty / "tumor_masks" / f"{ty_pid}.dcm").read_bytes()),
    }


def _stage_seconds(results: Path) -> dict:
    from mtnet.app.pipeline import Patient, score
    from mtnet.app.served import load_model

    tx = results / "synth" / "TX" / "data"
    pid = sorted(p.name.split(".")[0] for p in (tx / "images").iterdir())[0]
    served = load_model(results / "models" / MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        patient = Patient("patient", _factors(results, "TX", pid), tx / "images" / f"{pid}.nii.gz",
                          "nifti-gz", tx / "tumor_masks" / f"{pid}.nii.gz", "nifti-gz")
        start = time.perf_counter()
        result = score(served, [patient], Path(tmp) / "work", pictures=Path(tmp) / "pictures")[0]
        total = time.perf_counter() - start
    return {**result.stage_seconds, "total_with_picture": round(total, 3)}


def run(repeats: int = 3) -> dict:
    import requests

    results = _results()
    uploads = _uploads(results)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mtnet"), "serve", "--model",
                             str(results / "models" / MODEL), "--port", str(port), "--threads", "1"],
                            stdout=log, stderr=subprocess.STDOUT, env=_env())
    out: dict = {"model": MODEL, "repeats": repeats, "threads": 1}
    try:
        start = time.perf_counter()
        while True:
            try:
                requests.get(url + "/health", timeout=2)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.perf_counter() - start > 120:
                    raise RuntimeError("mtnet serve did not start")
                time.sleep(0.2)
        out["server_start_s"] = round(time.perf_counter() - start, 2)
        for kind, (fields, ct, mask) in uploads.items():
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                r = requests.post(url + "/predict", data=fields, timeout=900,
                                  files={"ct": ("ct", ct), "tumor_mask": ("mask", mask)})
                times.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{kind}: HTTP {r.status_code}")
            out[f"{kind}_upload_to_result_s"] = round(sorted(times)[len(times) // 2], 2)
            out[f"{kind}_all_s"] = [round(t, 2) for t in times]
            out[f"{kind}_upload_mb"] = round((len(ct) + len(mask)) / 2**20, 2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out["stage_seconds_nifti"] = _stage_seconds(results)
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    print(run())
