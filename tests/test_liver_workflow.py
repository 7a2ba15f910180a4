"""The liver and tumor rules end to end on ingested phantoms (tiny config): a training
center with its own liver masks (`provided`) and an external one (`classical`)."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import REPO, run_snakemake
from liver_phantom import abdomen

from mtnet.tumor.roi import load_roi

pytestmark = pytest.mark.slow


def _ingested(workdir, center, n, with_liver):
    base = workdir / "results" / "ingest" / center
    synth = workdir / "results" / "synth" / center
    for d in ("images", "tumor", "liver"):
        (base / d).mkdir(parents=True)
    (synth / "data").mkdir(parents=True)
    (synth / "truth" / "liver_masks").mkdir(parents=True)
    pids = [f"{center}-{i:04d}" for i in range(1, n + 1)]
    for i, pid in enumerate(pids):
        ct, liver, tumor = abdomen(4.0, seed=i + 10 * len(center), jitter_mm=6.0)
        sitk.WriteImage(ct, str(base / "images" / f"{pid}.nii.gz"))
        sitk.WriteImage(tumor, str(base / "tumor" / f"{pid}.nii.gz"))
        sitk.WriteImage(liver, str(synth / "truth" / "liver_masks" / f"{pid}.nii.gz"))
        if with_liver:
            sitk.WriteImage(liver, str(base / "liver" / f"{pid}.nii.gz"))
    pd.DataFrame({"patient_id": pids, "max_diameter_mm": [30.0] * n, "center": center}).to_csv(
        base / "clinical.tsv", sep="\t", index=False)
    (base / "qc.tsv").write_text("patient_id\n")
    (base / "qc_montage.png").write_bytes(b"")
    # ingestion's outputs are newer than the generator's
    past = time.time() - 3600
    for path in synth.rglob("*"):
        os.utime(path, (past, past))
    os.utime(synth / "data", (past, past))
    os.utime(synth / "truth", (past, past))
    return pids


def test_liver_and_tumor_rules(tmp_path):
    _ingested(tmp_path, "TA", 2, with_liver=True)
    pids = _ingested(tmp_path, "TX", 2, with_liver=False)
    targets = [f"results/{stage}/{c}/{f}" for c in ("TA", "TX")
               for stage, f in (("liver", "qc.tsv"), ("tumor", "lesions.tsv"))]
    result = run_snakemake(
        ["--cores", "1", "--rerun-triggers", "mtime", "--allowed-rules", "liver", "tumor",
         "--replace-workflow-config", *targets],
        tmp_path, timeout=300, configfiles=[REPO / "config" / "tiny.yaml"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    qc_tx = pd.read_csv(tmp_path / "results/liver/TX/qc.tsv", sep="\t")
    assert list(qc_tx["patient_id"]) == pids and (qc_tx["backend"] == "classical").all()
    assert (qc_tx["reference"] == "synthetic_truth").all() and (qc_tx["dice"] > 0.9).all()
    qc_ta = pd.read_csv(tmp_path / "results/liver/TA/qc.tsv", sep="\t")
    assert (qc_ta["backend"] == "provided").all() and (qc_ta["dice"] == 1.0).all()
    lesions = pd.read_csv(tmp_path / "results/tumor/TX/lesions.tsv", sep="\t")
    assert (lesions["n_lesions"] == 1).all() and (lesions["outside_liver_fraction"] == 0).all()
    roi = load_roi(tmp_path / f"results/tumor/TX/roi/{pids[0]}.npz")
    assert roi.image.shape == (48, 48, 48)  # tiny: tumor.roi_grid 48^3
    assert (tmp_path / "results/logs/liver/TX.log").stat().st_size > 0
