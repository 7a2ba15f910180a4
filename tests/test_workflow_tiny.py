"""The whole workflow, end to end, on the `tiny` synthetic preset (config/tiny.yaml).

One run is shared by the tests of this module (it takes minutes on 2 cores): they check
that every stage wrote its contract, that a second run has nothing to do, that the run is
deterministic, that no generator truth or DICOM header value leaks into the model inputs,
and that one hospital's bad data leaves the others' results intact. A second clean run
(`mtnet audit --rerun`, from the first run's manifest) checks that two runs give the same
metric tables, figures and manifest except for times; the report opens in Chromium.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

import report_browser
from conftest import REPO, VENV_BIN, dry_run_jobs, run_snakemake, workflow_env
from mtnet.model import registry
from mtnet.report import manifest as mf

pytestmark = pytest.mark.slow

TINY = REPO / "config" / "tiny.yaml"
TRAIN, EXTERNAL = ["TA", "TB"], ["TX"]
CENTERS = TRAIN + EXTERNAL
PREDICTION_COLUMNS = [
    "patient_id", "center", "model", "risk", "mvi", "time_to_mvi_days", "death", "os_days", "split",
]
MODELS = yaml.safe_load(TINY.read_text())["models"]
STATS_FILES = [
    "discrimination.tsv", "delong.tsv", "nri_idi.tsv", "calibration.tsv",
    "decision_curve.tsv", "subgroups.tsv", "survival.tsv",
]


def tiny(args, workdir, extra=(), timeout=1500):
    return run_snakemake(
        ["--cores", "2", *args, "--replace-workflow-config"],
        workdir,
        timeout=timeout,
        configfiles=[TINY, *extra],
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    result = tiny([], workdir)
    assert result.returncode == 0, result.stderr[-6000:]
    return workdir


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values=["NA"], keep_default_na=False)


def test_every_stage_writes_its_contract(run_dir):
    res = run_dir / "results"
    for center in CENTERS:
        clinical = read_tsv(res / "ingest" / center / "clinical.tsv")
        pids = sorted(clinical["patient_id"])
        assert len(pids) >= 10 and (clinical["center"] == center).all()
        images = sorted(p.name.removesuffix(".nii.gz") for p in (res / "ingest" / center / "images").glob("*.nii.gz"))
        assert images == pids
        liver_qc = read_tsv(res / "liver" / center / "qc.tsv")
        assert sorted(liver_qc["patient_id"]) == pids
        assert (liver_qc["volume_ml"] > 0).all()
        lesions = read_tsv(res / "tumor" / center / "lesions.tsv")
        assert sorted(lesions["patient_id"]) == pids
        assert len(list((res / "tumor" / center / "roi").glob("*.npz"))) == len(pids)
        for model in MODELS:
            pred = read_tsv(res / "predictions" / center / f"{model}.tsv")
            assert list(pred.columns[:9]) == PREDICTION_COLUMNS, model
            splits = {"apparent", "oof"} if center in TRAIN else {"external"}
            assert set(pred["split"]) == splits, (center, model)
            for split in splits:
                assert sorted(pred.loc[pred["split"] == split, "patient_id"]) == pids, (center, model)
            assert pred["risk"].between(0, 1).all(), (center, model)
            if registry.MODELS[model].family == "mtnet" and model != "Model-CR":
                assert pred["h_score"].between(0, 1).all(), (center, model)
    for center in EXTERNAL + ["pooled_train", "pooled_train_apparent"]:
        for name in STATS_FILES:
            assert (res / "stats" / center / name).is_file(), (center, name)
        disc = read_tsv(res / "stats" / center / "discrimination.tsv")
        assert set(disc["model"]) == set(MODELS)
        # Model-CR-DR against every other model
        assert len(read_tsv(res / "stats" / center / "delong.tsv")) == len(MODELS) - 1
    validity = read_tsv(res / "stats" / "validity.tsv")
    assert set(validity.loc[validity["row"] == "model", "model"]) == set(MODELS)
    assert (res / "stats" / "table1.tsv").is_file()
    # every model folder keeps the split its out-of-fold risks came from
    split_file = (res / "splits" / "folds.tsv").read_bytes()
    for model in MODELS:
        assert (res / "models" / model / "model" / "splits.tsv").read_bytes() == split_file, model


def test_the_liver_is_found_on_synthetic_ct(run_dir):
    for center in CENTERS:
        qc = read_tsv(run_dir / "results" / "liver" / center / "qc.tsv")
        assert qc["dice"].median() >= 0.85, (center, qc["dice"].describe())


def test_a_second_run_has_nothing_to_do(run_dir):
    result = tiny(["-n"], run_dir, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def second_run(run_dir, tmp_path_factory):
    """The whole workflow again from scratch, as a reviewer reruns it: `mtnet audit --rerun`
    from the first run's manifest (it compares the metric tables itself)."""
    scratch = tmp_path_factory.mktemp("rerun")
    result = subprocess.run(
        [str(VENV_BIN / "mtnet"), "audit", "--rerun", "--scratch", str(scratch),
         str(run_dir / "results")],
        capture_output=True, text=True, env=workflow_env(), timeout=2400,
    )
    return scratch, result


def test_the_run_is_deterministic(run_dir, second_run):
    # recomputed from scratch elsewhere: same bytes for the tables and the model's risks
    again, result = second_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    targets = [
        "results/predictions/TX/Model-Clinical-LR.tsv",
        "results/predictions/TX/Model-CR-DR.tsv",
        "results/predictions/TA/Model-Logistic-CR-DR.tsv",
        "results/models/Model-Clinical-LR/summary.tsv",
        "results/liver/TX/qc.tsv",
    ]
    for target in targets + ["results/ingest/TX/clinical.tsv", "results/synth/TX/truth/patients.tsv"]:
        assert (again / target).read_bytes() == (run_dir / target).read_bytes(), target


def test_two_clean_runs_give_the_same_tables_figures_and_manifest(run_dir, second_run):
    again, result = second_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "the rerun's metric tables are identical" in result.stdout
    for folder in ("stats", "figures", "tables", "checklist"):
        first = sorted(p.relative_to(run_dir) for p in (run_dir / "results" / folder).rglob("*")
                       if p.is_file())
        assert first, folder
        for rel in first:
            assert (again / rel).read_bytes() == (run_dir / rel).read_bytes(), rel
    one = mf.read_manifest(run_dir / mf.MANIFEST)
    two = mf.read_manifest(again / mf.MANIFEST)
    assert one["rule_times"] and two["rule_times"]
    assert mf.without_times(one) == mf.without_times(two)
    # every output but the model identities' creation time has the same bytes
    differ = [p for p, r in one["outputs"].items() if two["outputs"][p]["sha256"] != r["sha256"]]
    assert all(p.endswith("/identity.json") for p in differ), differ


def test_audit_says_ok_and_names_a_changed_prediction(run_dir, tmp_path):
    def audit(results):
        return subprocess.run([str(VENV_BIN / "mtnet"), "audit", str(results)],
                              capture_output=True, text=True, env=workflow_env(), timeout=300)

    ok = audit(run_dir / "results")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK: ")
    copy = tmp_path / "run"
    shutil.copytree(run_dir / "results", copy / "results")
    target = copy / "results" / "predictions" / "TX" / "Model-Clinical-LR.tsv"
    data = bytearray(target.read_bytes())
    data[-2] = ord("0") if data[-2] != ord("0") else ord("1")
    target.write_bytes(bytes(data))
    bad = audit(copy / "results")
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert lines[0].startswith("changed: results/predictions/TX/Model-Clinical-LR.tsv (sha256 ")
    assert len(lines) == 2 and lines[1].startswith("DIFFERENT: 1 changed")


def test_one_changed_clinical_table_reruns_only_what_depends_on_it(run_dir, tmp_path):
    work = tmp_path / "changed"
    shutil.copytree(run_dir, work, symlinks=True)
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(tiny(["-n"], work, timeout=300))
    table = work / "results" / "ingest" / "TX" / "clinical.tsv"
    df = read_tsv(table)
    df.loc[0, "age"] = df.loc[0, "age"] + 1
    df.to_csv(table, sep="\t", index=False, na_rep="NA")
    result = tiny(["-n"], work, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted((rule, w.get("center", "")) for rule, w in dry_run_jobs(result))
    # TX's tumor stage reads the table's diameters, its features the lesions; each model
    # predicts TX again; nothing is refitted
    tx = ["ceilings", "features", "figures", "stats", "stats_tables", "tumor", "tumor_montage"]
    expected = sorted([(r, "TX") for r in tx] + [("predict_model", "TX")] * len(MODELS)
                      + [(r, "") for r in ("all", "checklist", "manifest", "table1",
                                           "table1_html", "validity")])
    assert jobs == expected


def test_truth_is_never_an_input_of_a_model(run_dir):
    """Only the liver QC (a Dice against the generator's masks) and the report's ceilings
    figure may read results/synth/*/truth."""
    result = tiny(["--summary", "--detailed-summary"], run_dir, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for line in result.stdout.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) > 3 and "/truth" in line and not fields[0].startswith("results/synth/"):
            # the liver QC's Dice, and the report's Bayes ceilings of a synthetic center
            assert fields[0].startswith("results/liver/") or fields[0].endswith(
                "/ceilings.svg"), line


def test_one_bad_hospital_leaves_the_others_intact(run_dir, tmp_path):
    """A hospital with a broken clinical table fails alone; finished centers are kept."""
    work = tmp_path / "bad"
    shutil.copytree(run_dir / "results", work / "results")
    before = digest(sorted((work / "results" / "predictions").rglob("*.tsv")))
    # a copy of TX's delivery, as a hospital's own files, with an impossible age
    data = work / "hospital"
    shutil.copytree(run_dir / "results" / "synth" / "TX" / "data", data)
    entry = yaml.safe_load((data / "center.yaml").read_text())
    clinical = data / entry["clinical"]
    if clinical.suffix == ".csv":
        table = pd.read_csv(clinical)
        table.loc[0, "age"] = 250
        table.to_csv(clinical, index=False)
        bad_pid = table.loc[0, "patient_id"]
    else:  # edit the cell in place: the workbook keeps its other sheets
        book = openpyxl.load_workbook(clinical)
        sheet = book[entry["clinical_sheet"]] if "clinical_sheet" in entry else book.worksheets[0]
        header = [cell.value for cell in sheet[1]]
        sheet.cell(row=2, column=header.index("age") + 1, value=250)
        bad_pid = sheet.cell(row=2, column=header.index("patient_id") + 1).value
        book.save(clinical)
    hospital = {"role": "external", "source": "files"}
    for key, value in entry.items():
        if key in {"images", "tumor_masks", "liver_masks", "clinical", "clinical_mapping"}:
            value = str(data / value)
        hospital[key] = value
    extra = work / "bad.yaml"
    extra.write_text(yaml.safe_dump({"centers": {"BAD": hospital}}))
    # TINY already lists TA, TB, TX; the extra file adds BAD
    result = tiny(["--keep-going"], work, extra=[extra], timeout=900)
    assert result.returncode != 0
    log = (work / "results" / "logs" / "ingest" / "BAD.log").read_text()
    assert "age" in log and str(bad_pid) in log
    assert not (work / "results" / "ingest" / "BAD" / "clinical.tsv").exists()
    after = digest(sorted((work / "results" / "predictions").rglob("*.tsv")))
    assert after == before


def test_no_dicom_header_identifier_leaves_ingestion(run_dir):
    """The generator's DICOM PatientName, PatientID, birth date and accession number appear
    in no file the workflow wrote after ingestion (gzip'd NIfTI headers included)."""
    import gzip
    import zipfile

    res = run_dir / "results"
    values = set()
    for table in (res / "synth").glob("*/truth/dicom_identifiers.tsv"):
        ids = read_tsv(table).astype(str)
        for column in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"):
            values |= set(ids[column])
    assert values, "no DICOM center in the tiny preset"
    needles = [v.encode() for v in values if len(v) >= 6]
    scanned = 0
    for path in res.rglob("*"):
        if not path.is_file() or path.relative_to(res).parts[0] == "synth":
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        elif path.suffix == ".npz":
            with zipfile.ZipFile(path) as z:
                data = b"".join(z.read(name) for name in z.namelist())
        scanned += 1
        leaked = [n.decode() for n in needles if n in data]
        assert not leaked, (path, leaked[:3])
    assert scanned > 100


def test_the_unet_backend_trains_on_the_centers_with_liver_masks(run_dir, tmp_path):
    """TX switched to `liver_backend: unet`: the UNet learns from TA and TB (their own liver
    masks), reports its held-out Dice, and segments TX."""
    work = tmp_path / "unet"
    shutil.copytree(run_dir / "results", work / "results")
    shutil.rmtree(work / "results" / "liver" / "TX")
    extra = work / "unet.yaml"
    extra.write_text(yaml.safe_dump({"centers": {"TX": {
        "role": "external", "source": "synthetic", "synthetic": {"preset": "tiny"},
        "liver_backend": "unet",
    }}}))
    result = tiny(["results/liver/TX/qc.tsv"], work, extra=[extra], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    heldout = read_tsv(work / "results" / "liver" / "unet" / "heldout_dice.tsv")
    assert set(heldout["center"]) == {"TA", "TB"} and heldout["dice"].median() >= 0.85
    qc = read_tsv(work / "results" / "liver" / "TX" / "qc.tsv")
    assert set(qc["backend"]) == {"unet"} and qc["dice"].median() >= 0.85


def test_the_report_holds_every_stage(run_dir):
    result = tiny(["--report", "results/report.html"], run_dir, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (run_dir / "results" / "report.html").read_text(errors="replace")
    for label in ("Ingestion", "Liver", "Tumor", "Models", "Statistics", "synthetic"):
        assert label in html, label


def results_digest(workdir: Path) -> dict[str, str]:
    """Every result file but the logs, the provenance manifest and the report (they hold
    times; the manifest's own comparison is the two-clean-runs test's)."""
    res = workdir / "results"
    return {str(p.relative_to(res)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(res.rglob("*"))
            if p.is_file() and p.relative_to(res).parts[0] not in ("logs", "provenance")
            and p.name != "report.html"}


def test_a_run_killed_with_sigkill_resumes_with_the_readme_command(run_dir, tmp_path):
    """`make demo`'s command (`mtnet run ... --rerun-incomplete`) on a copy of the finished run
    whose external center still has its liver, tumor, prediction and statistics steps to do;
    its snakemake killed with SIGKILL while the liver job runs: the killed run's jobs stop, and
    the same command alone resumes and ends with results byte-identical to the uninterrupted
    run's."""
    import subprocess
    import time

    import psutil

    work = tmp_path / "killed"
    shutil.copytree(run_dir, work, symlinks=True)
    for stage in ("liver", "tumor", "predictions", "stats"):
        shutil.rmtree(work / "results" / stage / "TX")
    shutil.rmtree(work / "results" / "logs")
    cmd = [str(VENV_BIN / "mtnet"), "run", "-s", str(REPO / "Snakefile"), "-d", str(work),
           "--configfile", str(TINY), "--replace-workflow-config", "--cores", "2",
           "--rerun-incomplete"]
    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(cmd, env=workflow_env(), cwd=work, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while not (work / "results" / "liver" / "TX" / "masks").is_dir():
            assert first.poll() is None and time.monotonic() < deadline, "the liver job never started"
            time.sleep(0.2)
        time.sleep(2)  # the job is writing its masks
        snake = next(p for p in psutil.Process(first.pid).children()
                     if any("snakemake" in part for part in p.cmdline()[:2]))
        jobs = snake.children(recursive=True)
        assert jobs, "no job running when killed"
        snake.kill()
        assert first.wait(timeout=120) == 137
    _, alive = psutil.wait_procs(jobs, timeout=5)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "jobs of the killed run go on"
    assert list((work / ".snakemake" / "locks").iterdir()), "the dead run left no lock"
    assert "snakemake was killed by signal 9" in (tmp_path / "first.log").read_text()

    second = subprocess.run(cmd, env=workflow_env(), cwd=work, capture_output=True, text=True,
                            timeout=1200)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "is a dead run's lock (no live snakemake works here): clearing it" in second.stderr
    want, got = results_digest(run_dir), results_digest(work)
    assert sorted(got) == sorted(want)
    assert [k for k in want if want[k] != got[k]] == []


def test_the_report_shows_every_figure_and_table_in_chromium(run_dir):
    """results/report.html in headless Chromium: each evaluated center's figures and tables,
    Table 1 and the checklist are shown on screen (an image, a framed page), not offered for
    download; the raw TSVs are the downloads."""
    why = report_browser.missing()
    if why:
        pytest.skip(why)
    report = run_dir / "results" / "report.html"
    result = tiny(["--report", str(report)], run_dir, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with report_browser.browser() as b:
        b.open(report)
        assert "SYNTHETIC DATA" in b.landing_text()
        for center in ("TX", "pooled_train", "pooled_train_apparent"):
            b.open(report)
            b.menu("5. Statistics", center)
            items = b.items()
            kinds = {i["labels"][0]: i["labels"][1] for i in items}
            assert sum(k == "figure" for k in kinds.values()) == 9, (center, kinds)
            assert sum(k == "table" for k in kinds.values()) == 4, (center, kinds)
            for label, kind in kinds.items():
                shown = b.show(label)
                if kind == "figure":
                    assert shown["kind"] == "img" and shown["width"] > 300, (center, label)
                    assert shown["src"].startswith("data:image/svg+xml"), (center, label)
                elif kind == "table":
                    assert shown["kind"] == "html", (center, label)
                    assert any(c.startswith("mtnet-table") for c in shown["tables"]), label
                    assert "SYNTHETIC DATA" in shown["text"], (center, label)
                else:
                    assert shown["kind"] == "download", (center, label)
        b.open(report)
        b.menu("5. Statistics", "Table 1")
        shown = b.show("Table 1 (table)")
        assert shown["kind"] == "html" and "mtnet-table mtnet-table1" in shown["tables"]
        assert "Training vs TX" in shown["text"]
        assert b.show("Table 1 (raw TSV, download)")["kind"] == "download"
        b.open(report)
        b.menu("6. Reporting checklist")
        shown = b.show("TRIPOD+AI checklist (table)")
        assert shown["kind"] == "html" and any("mtnet-checklist" in c for c in shown["tables"])
        assert "TRIPOD+AI" in shown["text"] and "to be written by the authors" in shown["text"]
        assert b.show("TRIPOD+AI checklist (raw TSV, download)")["kind"] == "download"
        b.open(report)
        b.menu("7. Provenance")
        shown = b.show("Provenance summary (page)")
        assert shown["kind"] == "html" and "mtnet audit results/" in shown["text"]
