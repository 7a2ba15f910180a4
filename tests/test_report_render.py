"""The report's items as the workflow writes them: the curve tables of the stats stage (the
seven tables unchanged beside them), the typed records read back from them, the figures and
HTML pages of a center, the tuning-path figure. Python engine, synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtnet import stats
from mtnet.report import figures as F
from mtnet.report import render
from mtnet.report.curves import calibration_results, km_results, roc_results
from mtnet.report.formatting import SYNTHETIC_BANNER
from mtnet.seeds import derive_seed
from mtnet.stats.analyses import COLUMNS, CURVE_COLUMNS, ROC_BAND_RESAMPLES, evaluate_center
from mtnet.tables import read_tsv
from report_fixtures import MODELS, SIGNAL, SIZES
from stats_synthetic import clinical_table, predictions, write_table

SEED = 20211028


def cohort(root):
    """Prediction files and clinical tables of a three-center cohort (TA, TB train; TX)."""
    tables, preds = {}, {}
    for center, (n, seed) in SIZES.items():
        t = clinical_table(center, n, seed)
        tables[center] = write_table(t, root / f"{center}.tsv")
        split = "external" if center == "TX" else "apparent"
        for i, model in enumerate(MODELS):
            path = root / center / f"{model}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            predictions(t, model, SIGNAL[model], seed * 100 + i, split).to_csv(
                path, sep="\t", index=False, na_rep="NA"
            )
            preds[(center, model)] = path
    return tables, preds


def evaluate(root, tables, preds, names, seed=SEED):
    outputs = {k: root / f"{k}.tsv" for k in names}
    evaluate_center(
        "TX",
        predictions=[preds[("TX", m)] for m in MODELS],
        training_predictions=[preds[(c, m)] for m in MODELS for c in ("TA", "TB")],
        tables=[tables["TX"]],
        models=MODELS,
        outputs=outputs,
        settings={"engine": "python"},
        seed=seed,
    )
    return outputs


@pytest.fixture(scope="module")
def stats_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("render")
    tables, preds = cohort(root)
    plain = evaluate(root / "plain", tables, preds, list(COLUMNS))
    full = evaluate(root / "full", tables, preds, list(COLUMNS) + list(CURVE_COLUMNS))
    return {"plain": plain, "full": full, "preds": preds}


def test_the_seven_tables_are_the_same_with_the_curve_tables(stats_dir):
    for name in COLUMNS:
        assert stats_dir["full"][name].read_bytes() == stats_dir["plain"][name].read_bytes(), name


def test_curve_tables_are_the_api_records(stats_dir):
    full = stats_dir["full"]
    roc = read_tsv(full["roc_curves"])
    bands = read_tsv(full["roc_bands"])
    cal = read_tsv(full["calibration_curves"])
    for name, columns in CURVE_COLUMNS.items():
        assert list(read_tsv(full[name]).columns) == columns, name
    assert list(dict.fromkeys(roc["model"])) == MODELS
    for model in MODELS:
        d = pd.read_csv(stats_dir["preds"][("TX", model)], sep="\t")
        seed = derive_seed(SEED, "TX", model)
        a = stats.auc_ci(
            d["mvi"], d["risk"], engine="python", band_seed=seed, boot_n=ROC_BAND_RESAMPLES
        )
        mine = roc[roc["model"] == model]
        np.testing.assert_allclose(mine["tpr"], a.roc["tpr"], rtol=0, atol=1e-15)
        np.testing.assert_allclose(mine["fpr"], a.roc["fpr"], rtol=0, atol=1e-15)
        band = bands[bands["model"] == model]
        assert set(band["seed"]) == {seed} and set(band["boot_n"]) == {ROC_BAND_RESAMPLES}
        np.testing.assert_allclose(band["tpr_low"], a.band["tpr_low"], atol=1e-15)
        np.testing.assert_allclose(band["tpr_high"], a.band["tpr_high"], atol=1e-15)
        c = stats.calibration(d["mvi"], d["risk"], engine="python")
        bins = cal[(cal["model"] == model) & (cal["curve"] == "bin")]
        np.testing.assert_allclose(bins["observed_low"], c.curve["observed_low"], atol=1e-15)
        smooth = cal[(cal["model"] == model) & (cal["curve"] == "smooth")]
        np.testing.assert_allclose(smooth["observed"], c.smooth["observed"], atol=1e-15)


def test_km_curve_tables_are_the_risk_groups_of_survival_tsv(stats_dir):
    full = stats_dir["full"]
    surv = read_tsv(full["survival"])
    km = read_tsv(full["km_curves"])
    best = "Model-CR-DR"
    assert set(km["model"]) == {best}
    d = pd.read_csv(stats_dir["preds"][("TX", best)], sep="\t")
    youden = surv[(surv["split_by"] == "youden")]["threshold"].iloc[0]
    group = np.where(d["risk"] > youden, "high", "low")
    ref = stats.km_logrank(d["time_to_mvi_days"], d["mvi"], group, engine="python")
    mine = km[(km["split_by"] == "youden") & (km["endpoint"] == "time_to_mvi")]
    np.testing.assert_allclose(mine["survival"], ref.curves["survival"], atol=1e-15)
    assert list(mine["n_risk"]) == list(ref.curves["n_risk"])
    risk = read_tsv(full["km_at_risk"])
    mine = risk[(risk["split_by"] == "youden") & (risk["endpoint"] == "time_to_mvi")]
    assert list(mine["n_risk"]) == list(ref.at_risk["n_risk"])


def test_the_curve_tables_are_seeded(stats_dir, tmp_path):
    tables, preds = cohort(tmp_path)
    again = evaluate(tmp_path / "again", tables, preds, list(CURVE_COLUMNS))
    other = evaluate(tmp_path / "other", tables, preds, ["roc_bands"], seed=SEED + 1)
    for name in CURVE_COLUMNS:
        assert again[name].read_bytes() == stats_dir["full"][name].read_bytes(), name
    assert other["roc_bands"].read_bytes() != again["roc_bands"].read_bytes()


def test_records_read_back_from_the_tables(stats_dir):
    full = stats_dir["full"]
    disc = read_tsv(full["discrimination"])
    roc, why = roc_results(full["discrimination"], full["roc_curves"], full["roc_bands"])
    assert list(roc) == MODELS and not why
    for _, r in disc.iterrows():
        assert roc[r["model"]].auc == r["auc"] and roc[r["model"]].ci_low == r["ci_low"]
        assert roc[r["model"]].band.attrs["boot_n"] == ROC_BAND_RESAMPLES
    cal, why = calibration_results(full["calibration"], full["calibration_curves"])
    assert list(cal) == MODELS and not why
    panels = km_results(full["survival"], full["km_curves"], full["km_at_risk"])
    assert [(p.split_by, p.endpoint) for p in panels] == [
        ("youden", "time_to_mvi"),
        ("youden", "os"),
        ("h_score_median", "time_to_mvi"),
        ("h_score_median", "os"),
    ]
    surv = read_tsv(full["survival"])
    for p in panels:
        comp = surv[
            (surv["split_by"] == p.split_by)
            & (surv["endpoint"] == p.endpoint)
            & (surv["row"] == "comparison")
        ].iloc[0]
        assert p.km is not None and p.km.p == comp["logrank_p"]
        if pd.isna(comp["hr"]):  # a group without events: curves, no HR, the reason kept
            assert p.cox is None and p.reason == comp["reason"] != ""
        else:
            assert p.cox.hr == comp["hr"] and p.cox.ci_low == comp["hr_ci_low"]
        assert p.labels["low"].startswith("risk ≤ ")
    assert any(p.cox is not None for p in panels)


def test_a_center_figures_and_tables(stats_dir, tmp_path):
    inputs = stats_dir["full"]
    outputs = {k: tmp_path / "f" / f"{k}.svg" for k in render.CENTER_FIGURES}
    render.center_figures("TX", inputs=inputs, outputs=outputs, synthetic=True, split="external")
    again = {k: tmp_path / "g" / f"{k}.svg" for k in render.CENTER_FIGURES}
    render.center_figures("TX", inputs=inputs, outputs=again, synthetic=True, split="external")
    for k in render.CENTER_FIGURES:
        svg = outputs[k].read_bytes()
        assert b'id="synthetic-banner"' in svg, k
        assert b'id="not-computed"' not in svg, k
        assert svg == again[k].read_bytes(), k
    assert all(f'id="roc:{m}"'.encode() in outputs["roc"].read_bytes() for m in MODELS)
    pages = {k: tmp_path / "t" / f"{k}.html" for k in render.CENTER_TABLES}
    render.center_tables(
        "TX", inputs=inputs, outputs=pages, synthetic=True, note="External center TX.",
        split="external",
    )
    for k, page in pages.items():
        text = page.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
        assert f"mtnet-{k}" in text and SYNTHETIC_BANNER in text and "External center TX." in text
    assert "0.8" in pages["discrimination"].read_text() or "0.7" in pages["discrimination"].read_text()


def test_an_analysis_without_numbers_is_a_figure_with_its_reason(stats_dir, tmp_path):
    full = dict(stats_dir["full"])
    surv = read_tsv(full["survival"])
    surv.loc[surv["row"] == "comparison", ["logrank_p", "hr"]] = np.nan
    surv.loc[surv["row"] == "comparison", "reason"] = "no events: survival cannot be compared"
    full["survival"] = tmp_path / "survival.tsv"
    surv.to_csv(full["survival"], sep="\t", index=False, na_rep="NA")
    out = {"km_youden_os": tmp_path / "km.svg"}
    render.center_figures("TX", inputs=full, outputs=out, synthetic=False)
    svg = out["km_youden_os"].read_text()
    assert 'id="not-computed"' in svg and 'id="synthetic-banner"' not in svg
    fig = F.not_drawn("Overall survival", "no events: survival cannot be compared", synthetic=True)
    assert any("no events" in t.get_text() for t in fig.texts + fig.axes[0].texts)


def test_fit_path_figure_of_both_penalised_families(tmp_path):
    lr = pd.DataFrame({"penalty": np.logspace(-2, 3, 6), "cv_loglik": [-80, -60, -50, -48, -49, -55]})
    fig = F.fit_path_figure(lr, model="Model-Clinical-LR", synthetic=True, chosen=10.0)
    line = [a for a in fig.findobj(lambda a: a.get_gid() == "path:cv_loglik")][0]
    np.testing.assert_allclose(line.get_ydata(), lr["cv_loglik"])
    assert [a for a in fig.findobj(lambda a: a.get_gid() == "chosen")]
    rad = pd.DataFrame({"C": [0.01, 0.1, 1.0], "cv_auc": [0.5, 0.7, 0.65],
                        "cv_log_loss": [0.5, 0.4, 0.45]})
    fig = F.fit_path_figure(rad, model="Model-Radiomics", synthetic=False)
    assert len(fig.axes) == 2
    empty = pd.DataFrame(columns=["penalty", "cv_loglik"])
    fig = F.fit_path_figure(empty, model="Model-Clinical-LR", synthetic=False)
    assert [a for a in fig.findobj(lambda a: a.get_gid() == "not-recorded:cv_loglik")]
    with pytest.raises(Exception, match="no fit path"):
        F.fit_path_figure(pd.DataFrame({"x": [1]}), model="M", synthetic=False)
    # the workflow's entry: chosen value from the model folder
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text('{"fit": {"l2_penalty": 10.0}}')
    assert render.chosen_penalty(folder) == 10.0
    log = tmp_path / "log.tsv"
    lr.to_csv(log, sep="\t", index=False)
    out = render.training_figure(log, model="Model-Clinical-LR", model_folder=folder,
                                 output=tmp_path / "t.svg", synthetic=True)
    assert b'id="chosen"' in out.read_bytes()


def test_a_network_log_with_fewer_columns_and_an_unknown_log(tmp_path):
    log = tmp_path / "epochs.tsv"
    pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.9, 0.7, 0.6]}).to_csv(
        log, sep="\t", index=False
    )
    svg = render.training_figure(log, model="Model-CR-DR", model_folder=tmp_path / "none",
                                 output=tmp_path / "e.svg", synthetic=False).read_bytes()
    assert b'id="train:train_loss"' in svg and b'id="not-recorded:Segmentation Dice"' in svg
    odd = tmp_path / "odd.tsv"
    pd.DataFrame({"step": [1], "value": [2]}).to_csv(odd, sep="\t", index=False)
    svg = render.training_figure(odd, model="Model-X", model_folder=tmp_path / "none",
                                 output=tmp_path / "o.svg", synthetic=False).read_text()
    assert 'id="not-computed"' in svg
