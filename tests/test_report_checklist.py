"""The TRIPOD+AI checklist filled from a run's tables (synthetic cohort, python engine):
every item once, the authors' items left to them, the run's items stating its numbers and
pointing at outputs; heterogeneity across centers is the inverse-variance Q and I²."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from mtnet.config import load_config
from mtnet.report import checklist as C
from mtnet.tables import read_clinical, read_tsv
from report_fixtures import MODELS, write_center_tsvs

AUTHOR_ITEMS = {
    "1", "2", "3a", "3b", "3c", "4", "5b", "8b", "8c", "9c", "17", "18a", "18b", "18c",
    "18d", "19", "25", "26", "27a", "27b", "27c",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("checklist")
    out = write_center_tsvs(root)
    config = load_config(REPO / "config" / "tiny.yaml", overrides={"models": ["Model-Clinical-LR"]})
    centers = ["TA", "TB", "TX"]
    clinical = {c: read_clinical(root / f"{c}.tsv").assign(center=c) for c in centers}
    excl = {c: pd.DataFrame(columns=["patient_id", "reason"]) for c in centers}
    excl["TX"] = pd.DataFrame({"patient_id": ["TX-0999", "TX-0998"],
                               "reason": ["no tumor mask", "no tumor mask"]})
    missing = {c: pd.DataFrame(columns=["column", "reason"]) for c in centers}
    missing["TB"] = pd.DataFrame({"column": ["enhancement_ratio"], "reason": ["not recorded"]})
    disc = read_tsv(out["discrimination"])
    # a second, independent evaluation of the same models: the out-of-fold training risks
    oof = disc.assign(center="pooled_train", auc=disc["auc"] - 0.08,
                      ci_low=disc["ci_low"] - 0.1, ci_high=disc["ci_high"] - 0.06)
    summary = pd.DataFrame({"term": ["(intercept)", "age", "bclc[B]"], "coef": [-2, 0.01, 1]})
    return C.Run(
        config=config,
        centers=centers,
        eval_centers=["TX", "pooled_train"],
        models=MODELS,
        clinical=clinical,
        exclusions=excl,
        missing=missing,
        discrimination={"TX": disc, "pooled_train": oof},
        calibration={"TX": read_tsv(out["calibration"])},
        subgroups={"TX": read_tsv(out["subgroups"])},
        table1=read_tsv(out["table1"]),
        folds=pd.DataFrame({"center": ["TA"] * 3, "patient_id": ["a", "b", "c"],
                            "fold": [1, 2, 3]}),
        summaries={"Model-Clinical-LR": summary},
    )


def test_every_item_once_and_the_authors_items_are_theirs(run):
    df = C.checklist(run)
    assert list(df.columns) == C.COLUMNS
    assert df["item"].is_unique and len(df) == len(C.ITEMS) == 52
    assert set(df.loc[df["filled_by"] == C.AUTHOR, "item"]) == AUTHOR_ITEMS
    filled = df[df["filled_by"] == C.RUN]
    assert (filled["reported"].str.len() > 20).all()
    assert (df.loc[df["filled_by"] == C.AUTHOR, "reported"] == "to be written by the authors").all()
    main_items = {i.rstrip("abcdefg") for i in df["item"]}
    assert main_items == {str(i) for i in range(1, 28)}


def test_the_run_items_state_its_numbers(run):
    df = C.checklist(run).set_index("item")
    n = {c: len(run.clinical[c]) for c in run.centers}
    ev = {c: int(run.clinical[c]["mvi"].sum()) for c in run.centers}
    assert f"TX: {n['TX']} ingested, 2 excluded: no tumor mask (2)" in df.loc["6b", "reported"]
    assert f"TX {ev['TX']}/{n['TX']}" in df.loc["8a", "reported"]
    assert "TB: columns absent: enhancement_ratio" in df.loc["11", "reported"]
    assert f"Development: {n['TA'] + n['TB']} patients, {ev['TA'] + ev['TB']} events" in df.loc[
        "10", "reported"]
    assert "Model-Clinical-LR 2 terms" in df.loc["10", "reported"]
    assert f"{n['TX'] + 2} delivered, 2 excluded, {n['TX']} analysed" in df.loc["20a", "reported"]
    disc = run.discrimination["TX"].set_index("model")
    auc = disc.loc["Model-CR-DR"]
    assert f"TX Model-CR-DR: AUC {auc['auc']:.3f} [{auc['ci_low']:.3f}–{auc['ci_high']:.3f}]" in (
        df.loc["23a", "reported"])
    assert "synthetic" in df.loc["5a", "reported"] and "3-fold" in df.loc["12a", "reported"]
    assert "results/tables/table1.html" in df.loc["16", "where"]
    assert "TX sex:" in df.loc["14", "reported"]


def test_heterogeneity_is_the_inverse_variance_q(run):
    het = C.heterogeneity(run)
    for model in MODELS:
        a = [run.discrimination[c].set_index("model").loc[model] for c in ("TX", "pooled_train")]
        est = np.array([r["auc"] for r in a])
        se = np.array([(r["ci_high"] - r["ci_low"]) / (2 * 1.959964) for r in a])
        w = 1 / se**2
        q = float(np.sum(w * (est - np.sum(w * est) / w.sum()) ** 2))
        h = het[model]
        assert h["k"] == 2 and h["centers"] == ["TX", "pooled_train"]
        assert h["q"] == pytest.approx(q, rel=1e-10)
        assert h["i2"] == pytest.approx(max(0.0, (q - 1) / q), abs=1e-10)
    text = C.checklist(run).set_index("item").loc["23b", "reported"]
    assert "Cochran's Q" in text and "I²" in text


def test_checklist_page_and_tsv(run, tmp_path):
    df = C.checklist(run)
    html = C.checklist_html(df, synthetic=True)
    assert html.count("class='mtnet-item") == len(df)
    assert html.count("mtnet-author") == len(AUTHOR_ITEMS)
    assert "SYNTHETIC DATA" in html and "BMJ 2024" in html
