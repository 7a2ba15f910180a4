"""The statistics rules of the workflow on tiny generated clinical tables (20 patients per
center, a few events): splits, identity, train_model, predict_model, stats, table1."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from conftest import REPO, run_snakemake
from mtnet.io.center import fingerprints
from mtnet.stats.analyses import COLUMNS
from stats_synthetic import clinical_table, write_table


@pytest.mark.slow
@pytest.mark.r
def test_stats_rules_on_tiny_tables(tmp_path):
    for center, seed in (("TA", 1), ("TB", 2), ("TX", 3)):
        folder = tmp_path / "results" / "ingest" / center
        folder.mkdir(parents=True)
        table = clinical_table(center, 20, seed, event_rate=0.17)
        write_table(table, folder / "clinical.tsv")
        # what rule identity reads (an image's hash stands in for the image)
        images = {pid: hashlib.sha256(pid.encode()).hexdigest() for pid in table["patient_id"]}
        write_table(fingerprints(table, images), folder / "fingerprints.tsv")
    # the clinical model only: the tables are all these rules have (no images, no crops)
    only_clinical = tmp_path / "clinical_only.yaml"
    only_clinical.write_text("models: [Model-Clinical-LR]\n")
    targets = ["results/stats/table1.tsv"] + [
        f"results/stats/{c}/{k}.tsv"
        for c in ("TX", "pooled_train", "pooled_train_apparent")
        for k in COLUMNS
    ]
    res = run_snakemake(
        [
            "--cores",
            "1",
            "--allowed-rules",
            "splits",
            "identity",
            "train_model",
            "predict_model",
            "stats",
            "table1",
            "--replace-workflow-config",
            *targets,
        ],
        tmp_path,
        timeout=300,
        configfiles=[REPO / "config" / "tiny.yaml", only_clinical],
    )
    assert res.returncode == 0, res.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "results/predictions/TA/Model-Clinical-LR.tsv", sep="\t")
    assert pred["split"].value_counts().to_dict() == {"apparent": 20, "oof": 20}
    folds = pd.read_csv(tmp_path / "results/splits/folds.tsv", sep="\t")
    assert set(folds["center"]) == {"TA", "TB"} and sorted(folds["fold"].unique()) == [1, 2, 3]
    disc = pd.read_csv(
        tmp_path / "results/stats/TX/discrimination.tsv",
        sep="\t",
        keep_default_na=False,
        na_values=["NA"],
    )
    assert list(disc.columns) == COLUMNS["discrimination"]
    assert disc["model"].tolist() == ["Model-Clinical-LR"] and disc["n"].tolist() == [20]
    assert 0 <= disc["auc"].iloc[0] <= 1 and disc["engine"].tolist() == ["r"]
    for center, split in (("pooled_train", "oof"), ("pooled_train_apparent", "apparent")):
        pooled = pd.read_csv(tmp_path / f"results/stats/{center}/discrimination.tsv", sep="\t")
        assert pooled["split"].tolist() == [split] and pooled["n"].tolist() == [40]
    for center in ("TX", "pooled_train"):
        delong = pd.read_csv(tmp_path / f"results/stats/{center}/delong.tsv", sep="\t")
        assert delong.empty and list(delong.columns) == COLUMNS["delong"]
    coef = pd.read_csv(tmp_path / "results/models/Model-Clinical-LR/summary.tsv", sep="\t")
    assert coef["ci_low"].notna().all()
    assert coef["term"].iloc[0] == "(intercept)"
    table1 = pd.read_csv(tmp_path / "results/stats/table1.tsv", sep="\t")
    assert table1["external_center"].unique().tolist() == ["TX"]
