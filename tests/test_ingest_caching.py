"""Caching by content: a file replaced inside a delivery reruns its center (and only it), for a
hospital's delivery and for a synthetic center's generated data; a training patient
re-delivered as an external center is refused by rule identity."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from conftest import dry_run_jobs, run_snakemake
from ingest_fixtures import CLINICAL_ROW, make_center

pytestmark = pytest.mark.slow


def hospital(data, role):
    entry = yaml.safe_load((data / "center.yaml").read_text())
    for key in ("images", "tumor_masks", "liver_masks", "clinical"):
        if key in entry:
            entry[key] = str(data / entry[key])
    return {"role": role, **entry}


def planned(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return sorted((rule, w.get("center")) for rule, w in dry_run_jobs(result))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("caching")
    centers = {
        "HA": hospital(make_center(root, "HA", n=2, image_format="nifti"), "train"),
        "HB": hospital(make_center(root, "HB", n=2, image_format="nifti", seed=1, clinical_rows=[
            dict(CLINICAL_ROW, patient_id=f"HB-000{i}", age=50 + i) for i in (1, 2)]), "external"),
        "SX": {"role": "external", "source": "synthetic",
               "synthetic": {"preset": "tiny", "n_patients": 4, "n_events": 1}},
    }
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({"seed": 3, "centers": centers,
                                      "ingest": {"spacing_mm": [2.0, 2.0, 2.5]}}))
    work = root / "work"
    work.mkdir()
    return work, config


def targets():
    return [f"results/ingest/{c}/{f}" for c in ("HA", "HB", "SX") for f in ("qc.tsv", "identity.tsv")]


def smk(work, config, *args):
    return run_snakemake(["--cores", "2", "--replace-workflow-config", *args, *targets()], work,
                         timeout=600, configfiles=[config])


def test_a_replaced_file_reruns_its_center_only(workdir):
    work, config = workdir
    first = smk(work, config)
    assert first.returncode == 0, first.stderr[-3000:]
    assert planned(smk(work, config, "-n")) == []
    manifest = work / "results" / "ingest" / "HA" / "delivery.sha256"
    assert len(manifest.read_text().splitlines()) == 5  # 2 images, 2 masks, the table

    # a newer mtime without a change of content reruns nothing
    image = next((work.parent / "HA" / "data" / "images").glob("*.nii.gz"))
    os.utime(image)
    assert planned(smk(work, config, "-n")) == []

    # an image overwritten inside its folder (same name, same size, the old mtime kept as
    # `cp -p` does): HA is ingested again, and the centers that compare with it
    stamp = image.stat()
    img = sitk.ReadImage(str(image))
    arr = sitk.GetArrayFromImage(img)
    arr[0, 0, 0] += 1
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    sitk.WriteImage(out, str(image), True)
    os.utime(image, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    jobs = planned(smk(work, config, "-n"))
    assert [c for r, c in jobs if r == "ingest"] == ["HA"]
    assert sorted(c for r, c in jobs if r == "identity") == ["HA", "HB", "SX"]


def test_an_edited_synthetic_table_reruns_that_center(workdir):
    work, config = workdir
    assert smk(work, config).returncode == 0
    data = work / "results" / "synth" / "SX" / "data"
    entry = yaml.safe_load((data / "center.yaml").read_text())
    table = data / entry["clinical"]
    if table.suffix == ".csv":
        df = pd.read_csv(table)
        df.loc[0, "age"] = 71
        df.to_csv(table, index=False)
    else:
        import openpyxl

        book = openpyxl.load_workbook(table)
        sheet = book[entry.get("clinical_sheet", book.sheetnames[0])]
        header = [c.value for c in sheet[1]]
        sheet.cell(row=2, column=header.index("age") + 1, value=71)
        book.save(table)
    jobs = planned(smk(work, config, "-n"))
    assert [c for r, c in jobs if r == "ingest"] == ["SX"]
    assert ("synth", "SX") not in jobs  # the generator's own output is not regenerated


def test_a_training_center_re_delivered_as_external_is_refused(workdir, tmp_path):
    work, config = workdir
    copy = tmp_path / "HA-again"
    shutil.copytree(work.parent / "HA" / "data", copy)
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"centers": {"HC": hospital(copy, "external")}}))
    result = run_snakemake(["--cores", "2", "--replace-workflow-config", "--keep-going",
                            "results/ingest/HC/identity.tsv", "results/ingest/HB/identity.tsv"],
                           work, timeout=600, configfiles=[config, extra])
    assert result.returncode != 0
    log = (work / "results" / "logs" / "identity" / "HC.log").read_text()
    assert ("center HC, patient HA-0001: the ingested image and the clinical row equal those of "
            "patient HA-0001 of training center HA (a training patient re-delivered as an external one?) "
            "(and 1 more pair(s), in the log) (fix: remove the duplicate from the delivery, or set "
            "ingest.checks.identity.action: warn for a deliberate test)") in log
    assert not (work / "results" / "ingest" / "HC" / "identity.tsv").exists()
    assert (work / "results" / "ingest" / "HB" / "identity.tsv").exists()  # the others go on
    # a deliberate test: a warning, and the pairs listed
    extra.write_text(yaml.safe_dump({"centers": {"HC": hospital(copy, "external")},
                                     "ingest": {"checks": {"identity": {"action": "warn"}}}}))
    result = run_snakemake(["--cores", "2", "--replace-workflow-config",
                            "results/ingest/HC/identity.tsv"], work, timeout=600,
                           configfiles=[config, extra])
    assert result.returncode == 0, result.stderr[-3000:]
    pairs = pd.read_csv(work / "results" / "ingest" / "HC" / "identity.tsv", sep="\t")
    assert pairs[["patient_id", "match", "other_center", "other_patient"]].values.tolist() == [
        ["HA-0001", "image and clinical row", "HA", "HA-0001"],
        ["HA-0002", "image and clinical row", "HA", "HA-0002"]]
    assert np.all(pairs["other_role"] == "train")
