"""The statistics rules of the workflow on tiny generated clinical tables (20 patients per
center, a few events): train_model, predict_model, stats, table1."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import REPO, run_snakemake
from mtnet.stats.analyses import COLUMNS
from stats_synthetic import clinical_table, write_table


@pytest.mark.slow
@pytest.mark.r
def test_stats_rules_on_tiny_tables(tmp_path):
    for center, seed in (("TA", 1), ("TB", 2), ("TX", 3)):
        folder = tmp_path / "results" / "ingest" / center
        folder.mkdir(parents=True)
        write_table(clinical_table(center, 20, seed, event_rate=0.17), folder / "clinical.tsv")
    targets = ["results/stats/table1.tsv"] + [
        f"results/stats/{c}/{k}.tsv" for c in ("TX", "pooled_train") for k in COLUMNS
    ]
    res = run_snakemake(
        [
            "--cores",
            "1",
            "--allowed-rules",
            "train_model",
            "predict_model",
            "stats",
            "table1",
            "--replace-workflow-config",
            *targets,
        ],
        tmp_path,
        timeout=300,
        configfiles=[REPO / "config" / "tiny.yaml"],
    )
    assert res.returncode == 0, res.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "results/predictions/TA/Model-Clinical-LR.tsv", sep="\t")
    assert (pred["split"] == "apparent").all() and len(pred) == 20
    disc = pd.read_csv(
        tmp_path / "results/stats/TX/discrimination.tsv",
        sep="\t",
        keep_default_na=False,
        na_values=["NA"],
    )
    assert list(disc.columns) == COLUMNS["discrimination"]
    assert disc["model"].tolist() == ["Model-Clinical-LR"] and disc["n"].tolist() == [20]
    assert 0 <= disc["auc"].iloc[0] <= 1 and disc["engine"].tolist() == ["r"]
    for center in ("TX", "pooled_train"):
        delong = pd.read_csv(tmp_path / f"results/stats/{center}/delong.tsv", sep="\t")
        assert delong.empty and list(delong.columns) == COLUMNS["delong"]
    coef = pd.read_csv(tmp_path / "results/models/Model-Clinical-LR/summary.tsv", sep="\t")
    assert coef["term"].iloc[0] == "(intercept)"
    table1 = pd.read_csv(tmp_path / "results/stats/table1.tsv", sep="\t")
    assert table1["external_center"].unique().tolist() == ["TX"]
