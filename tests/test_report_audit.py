"""The provenance manifest and `mtnet audit` on a small results tree: OK on the tree as
written; each kind of difference (a changed byte, a missing file, an extra file, a changed
input, a tampered config) is named with its path, and the exit code is 1."""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import pytest

from conftest import REPO
from mtnet.cli import main
from mtnet.config import load_config
from mtnet.report import manifest as mf
from mtnet.report.audit import Difference, audit, rerun_config

TINY = REPO / "config" / "tiny.yaml"


@pytest.fixture()
def run(tmp_path):
    """A run folder: results/ with a prediction file, a stats table, a model identity, a log
    and a directory timestamp; a hospital's clinical table as an input."""
    root = tmp_path / "run"
    res = root / "results"
    files = {
        "predictions/TX/Model-Clinical-LR.tsv": "patient_id\trisk\nTX-0001\t0.12\nTX-0002\t0.34\n",
        "stats/TX/discrimination.tsv": "center\tmodel\tauc\nTX\tModel-Clinical-LR\t0.7\n",
        "models/Model-Clinical-LR/model/identity.json": json.dumps(
            {"model": "Model-Clinical-LR", "created": "2026-01-01T00:00:00+00:00"}
        ),
        "tumor/TX/roi/.snakemake_timestamp": "",
        "logs/stats/TX.log": "2026-01-01 10:00:00,000 INFO mtnet: start\n"
        "2026-01-01 10:00:02,500 INFO mtnet: done\n",
    }
    for rel, text in files.items():
        (res / rel).parent.mkdir(parents=True, exist_ok=True)
        (res / rel).write_text(text)
    hospital = tmp_path / "hospital.csv"
    hospital.write_text("patient_id,age\nH-1,60\n")
    config = load_config(TINY)
    mf.write_manifest(
        res / "provenance" / "manifest.json",
        summary=res / "provenance" / "summary.html",
        config=config,
        configfiles=[str(TINY)],
        inputs={"H.clinical": str(hospital)},
        snakemake_version="9.27.1",
    )
    return root


def kinds(diffs):
    return sorted((d.kind, d.path) for d in diffs)


def test_manifest_records_every_output_and_the_environment(run):
    record = mf.read_manifest(run / mf.MANIFEST)
    assert set(record["outputs"]) == {
        "results/predictions/TX/Model-Clinical-LR.tsv",
        "results/stats/TX/discrimination.tsv",
        "results/models/Model-Clinical-LR/model/identity.json",
    }
    rec = record["outputs"]["results/stats/TX/discrimination.tsv"]
    assert rec["sha256"] == mf.sha256_file(run / "results/stats/TX/discrimination.tsv")
    assert rec["bytes"] == (run / "results/stats/TX/discrimination.tsv").stat().st_size
    assert "content_sha256" in record["outputs"]["results/models/Model-Clinical-LR/model/identity.json"]
    assert record["config_sha256"] == mf.config_sha256(record["config"])
    assert record["config"]["seed"] == 7 and record["seeds"]["master"] == 7
    assert str(TINY) in record["inputs"] and len(record["inputs"]) == 2
    # no Snakemake job records in this folder: the times come from the logs
    assert record["rule_times"]["results/logs/stats/TX.log"] == {
        "rule": "stats",
        "start": "2026-01-01 10:00:00,000",
        "end": "2026-01-01 10:00:02,500",
        "seconds": 2.5,
    }
    sw = record["software"]
    assert sw["snakemake"] == "9.27.1" and sw["python_packages"]["pandas"]
    assert set(sw["r"]) == {"R", *mf.R_PACKAGES}
    assert record["hardware"]["cpus"] >= 1
    assert record["code"]["commit"] is None or len(record["code"]["commit"]) == 40
    summary = (run / mf.SUMMARY).read_text(encoding="utf-8")
    assert record["config_sha256"] in summary and "mtnet audit results/" in summary


def test_r_package_versions_are_read_from_r():
    if shutil.which("Rscript") is None:
        pytest.skip("R is not installed (tools/setup.sh installs Debian's r-base-core)")
    versions = mf.r_packages()
    assert versions["R"].startswith("4.") and versions["pROC"] and versions["survival"]


def test_audit_says_ok_on_the_tree_as_written(run, capsys):
    _, diffs = audit(run / "results")
    assert diffs == []
    assert main(["audit", str(run / "results")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 3 outputs and 2 inputs match the manifest")


def test_one_changed_byte_is_named_and_exits_1(run, capsys):
    path = run / "results/predictions/TX/Model-Clinical-LR.tsv"
    data = bytearray(path.read_bytes())
    data[-2] = ord("5")  # 0.34 -> 0.35
    path.write_bytes(bytes(data))
    assert main(["audit", str(run / "results")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("changed: results/predictions/TX/Model-Clinical-LR.tsv (sha256 ")
    assert "same size" in out[0]
    assert out[-1].startswith("DIFFERENT: 1 changed")


def test_missing_extra_input_and_config_differences(run):
    (run / "results/stats/TX/discrimination.tsv").unlink()
    (run / "results/stats/TX/delong.tsv").write_text("center\n")
    # a timestamp of a directory output and the logs are not part of the record
    (run / "results/logs/stats/TX.log").write_text("again\n")
    hospital = run.parent / "hospital.csv"
    hospital.write_text("patient_id,age\nH-1,61\n")
    path = run / mf.MANIFEST
    record = json.loads(path.read_text())
    record["config"]["seed"] = 8
    path.write_text(json.dumps(record))
    _, diffs = audit(run / "results")
    assert kinds(diffs) == [
        ("changed", str(hospital)),
        ("config", mf.MANIFEST),
        ("extra", "results/stats/TX/delong.tsv"),
        ("missing", "results/stats/TX/discrimination.tsv"),
    ]
    assert all(isinstance(d, Difference) and str(d).startswith(d.kind) for d in diffs)


def test_report_html_is_not_audited(run):
    (run / "results/report.html").write_text("<html></html>")
    assert audit(run / "results")[1] == []


def test_nothing_to_audit_exits_2(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    assert main(["audit", str(tmp_path / "results")]) == 2
    assert "no manifest" in capsys.readouterr().err
    assert main(["audit", str(tmp_path)]) == 2


def test_two_manifests_differ_only_in_their_times(run, tmp_path):
    first = mf.read_manifest(run / mf.MANIFEST)
    identity = run / "results/models/Model-Clinical-LR/model/identity.json"
    identity.write_text(
        json.dumps({"model": "Model-Clinical-LR", "created": "2027-05-05T00:00:00+00:00"})
    )
    (run / "results/logs/stats/TX.log").write_text("2026-01-02 10:00:00,000 INFO mtnet: x\n")
    second = mf.build_manifest(
        run,
        config=first["config"],
        configfiles=first["configfiles"],
        inputs=first["input_names"],
        snakemake_version="9.27.1",
    )
    rel = "results/models/Model-Clinical-LR/model/identity.json"
    assert first["outputs"][rel]["sha256"] != second["outputs"][rel]["sha256"]
    assert mf.without_times(first) == mf.without_times(second)
    # a change of content is not a time
    (run / "results/stats/TX/discrimination.tsv").write_text("other\n")
    third = mf.build_manifest(run, config=first["config"], configfiles=first["configfiles"],
                              inputs=first["input_names"], snakemake_version="9.27.1")
    assert mf.without_times(first) != mf.without_times(third)


def test_rerun_config_makes_hospital_paths_absolute(tmp_path):
    record = {"config": {"centers": {
        "H": {"role": "external", "source": "files", "images": "data/ct",
              "clinical": "/abs/clinical.csv", "phase": {"overrides": "phase.tsv"}},
        "S": {"role": "train", "source": "synthetic", "synthetic": {"preset": "tiny"}},
    }}}
    config = rerun_config(record, tmp_path)
    h = config["centers"]["H"]
    assert h["images"] == str((tmp_path / "data/ct").resolve())
    assert h["clinical"] == "/abs/clinical.csv"
    assert h["phase"]["overrides"] == str((tmp_path / "phase.tsv").resolve())
    assert record["config"]["centers"]["H"]["images"] == "data/ct"  # the record is untouched


def test_a_job_run_on_a_cluster_gets_its_time_from_its_log(tmp_path):
    """Snakemake records a job of a cluster executor as starting when it ended (0 s): its
    time comes from its log instead; a locally run job keeps Snakemake's record."""
    import base64

    root = tmp_path / "run"
    meta = root / ".snakemake" / "metadata"
    meta.mkdir(parents=True)
    jobs = {"results/stats/TX/discrimination.tsv": ("stats", "results/logs/stats/TX.log", 100.0, 100.0),
            "results/splits/folds.tsv": ("splits", "results/logs/splits/all.log", 50.0, 53.25)}
    for output, (rule, log, start, end) in jobs.items():
        name = base64.urlsafe_b64encode(output.encode()).decode()
        (meta / name).write_text(json.dumps({"rule": rule, "log": [log], "starttime": start,
                                             "endtime": end}))
    for log, text in (("stats/TX.log", "2026-01-01 10:00:00,000 INFO a\n2026-01-01 10:00:04,250 INFO b\n"),
                      ("splits/all.log", "2026-01-01 09:00:00,000 INFO a\n")):
        (root / "results" / "logs" / log).parent.mkdir(parents=True, exist_ok=True)
        (root / "results" / "logs" / log).write_text(text)
    times = mf.rule_times(root)
    assert times["results/logs/stats/TX.log"]["seconds"] == 4.25
    assert times["results/logs/stats/TX.log"]["rule"] == "stats"
    start = datetime.fromisoformat(times["results/logs/stats/TX.log"]["start"])
    assert start.utcoffset() is not None and start == datetime(2026, 1, 1, 10).astimezone()
    assert times["results/logs/splits/all.log"]["seconds"] == 3.25
