"""Rule `ingest` through Snakemake: two hospitals' own files, one of them broken."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import run_snakemake
from ingest_fixtures import CLINICAL_ROW, make_center

pytestmark = pytest.mark.slow


def test_rule_ingest_runs_per_center_and_a_broken_center_fails_alone(tmp_path):
    good = make_center(tmp_path, "HOSPA", n=2, mask_format="dicom-seg")
    bad = make_center(tmp_path, "HOSPB", n=1, image_format="nifti",
                      clinical_rows=[dict(CLINICAL_ROW, patient_id="HOSPB-0001", age=150)])
    centers = {}
    for name, data, role in (("HOSPA", good, "train"), ("HOSPB", bad, "external")):
        entry = yaml.safe_load((data / "center.yaml").read_text())
        for key in ("images", "tumor_masks", "clinical"):
            entry[key] = str(data / entry[key])
        centers[name] = {"role": role, **entry}
    config = tmp_path / "hospitals.yaml"
    config.write_text(yaml.safe_dump({"seed": 1, "centers": centers,
                                      "ingest": {"spacing_mm": [2.0, 2.0, 2.5]}}))
    work = tmp_path / "work"
    work.mkdir()
    targets = ["results/ingest/HOSPA/qc.tsv", "results/ingest/HOSPB/qc.tsv"]
    result = run_snakemake(["--cores", "1", "--keep-going", "--replace-workflow-config", *targets],
                           work, timeout=300, configfiles=[config])
    assert result.returncode != 0
    log = (work / "results" / "logs" / "ingest" / "HOSPB.log").read_text()
    assert "center HOSPB, patient HOSPB-0001, column age: value 150 out of range (0-120)" in log
    qc = pd.read_csv(work / "results" / "ingest" / "HOSPA" / "qc.tsv", sep="\t")
    assert qc.patient_id.tolist() == ["HOSPA-0001", "HOSPA-0002"]
    for name in ("clinical.tsv", "missing_columns.tsv", "exclusions.tsv", "qc_montage.png"):
        assert (work / "results" / "ingest" / "HOSPA" / name).exists()
    assert not (work / "results" / "ingest" / "HOSPB" / "qc.tsv").exists()
