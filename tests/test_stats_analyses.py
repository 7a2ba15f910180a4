"""evaluate_center and write_table1 on synthetic clinical tables and prediction files:
the seven TSVs with their fixed columns, the model-pair machinery, degenerate inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtnet.errors import InputError
from mtnet.stats import analyses
from mtnet.stats.analyses import COLUMNS, evaluate_center
from mtnet.stats.table1 import TABLE1_OUTPUT, write_table1
from stats_synthetic import clinical_table, predictions, write_table

MODELS = ["Model-Clinical-LR", "Model-CR-DR", "Model-DR", "Model-CR", "Model-NoSeg-CR-DR"]
SIGNAL = {
    "Model-CR-DR": 2.5,
    "Model-DR": 1.0,
    "Model-CR": 1.5,
    "Model-NoSeg-CR-DR": 1.8,
    "Model-Clinical-LR": 1.2,
}
SIZES = {"TA": (150, 1), "TB": (130, 2), "TX": (85, 3)}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    d = tmp_path_factory.mktemp("cohort")
    tables, preds = {}, {}
    for center, (n, seed) in SIZES.items():
        t = clinical_table(center, n, seed)
        tables[center] = write_table(t, d / f"{center}.tsv")
        split = "external" if center == "TX" else "apparent"
        for i, model in enumerate(MODELS):
            path = d / center / f"{model}.tsv"
            path.parent.mkdir(exist_ok=True)
            predictions(t, model, SIGNAL[model], seed * 100 + i, split).to_csv(
                path, sep="\t", index=False, na_rep="NA"
            )
            preds[(center, model)] = path
    return d, tables, preds


def run(d, tables, preds, center, models, engine="python", name="out", settings=None):
    members = ["TA", "TB"] if center == "pooled_train" else [center]
    outputs = {k: d / name / center / f"{k}.tsv" for k in COLUMNS}
    evaluate_center(
        center,
        predictions=[preds[(c, m)] for m in models for c in members],
        training_predictions=[preds[(c, m)] for m in models for c in ("TA", "TB")],
        tables=[tables[c] for c in members],
        models=models,
        outputs=outputs,
        settings={"engine": engine, **(settings or {})},
    )
    return {
        k: pd.read_csv(p, sep="\t", keep_default_na=False, na_values=["NA"])
        for k, p in outputs.items()
    }


def test_all_models_external_center(cohort):
    d, tables, preds = cohort
    out = run(d, tables, preds, "TX", MODELS)
    for name, frame in out.items():
        assert list(frame.columns) == COLUMNS[name], name
    disc = out["discrimination"].set_index("model")
    assert disc.loc["Model-CR-DR", "auc"] > disc.loc["Model-DR", "auc"]
    assert (disc["n"] == 85).all() and (disc["reason"] == "").all()
    assert disc["threshold"].notna().all()  # Youden thresholds fixed on TA + TB
    # Model-CR-DR against every other model, in the order they are listed
    dl = out["delong"]
    assert dl["model"].unique().tolist() == ["Model-CR-DR"]
    assert dl["comparator"].tolist() == [
        "Model-Clinical-LR",
        "Model-DR",
        "Model-CR",
        "Model-NoSeg-CR-DR",
    ]
    assert np.allclose(dl["auc_model"], disc.loc["Model-CR-DR", "auc"])
    nri = out["nri_idi"]
    assert len(nri) == 3 * 4
    assert set(nri["measure"]) == {"nri_continuous", "nri_categorical", "idi"}
    assert (nri.loc[nri["measure"] == "nri_categorical", "cutoffs"].astype(str) == "0.157").all()
    idi = nri[nri["measure"] == "idi"].set_index("comparator")
    assert idi.loc["Model-DR", "value"] == pytest.approx(
        idi.loc["Model-DR", "events"] + idi.loc["Model-DR", "nonevents"]
    )
    cal = out["calibration"]
    assert set(cal["row"]) == {"summary", "bin"}
    bins = cal[(cal["row"] == "bin") & (cal["model"] == "Model-CR-DR")]
    assert bins["n"].sum() == 85
    dc = out["decision_curve"]
    assert len(dc) == len(MODELS) * 60 and dc["threshold"].min() == pytest.approx(0.01)
    sub = out["subgroups"]
    assert (sub["model"] == "Model-CR-DR").all()
    assert {
        "age",
        "sex",
        "treatment",
        "child_pugh",
        "cirrhosis",
        "bclc",
        "max_diameter_mm",
        "lesion_number",
        "afp_ng_ml",
    } == set(sub["factor"])
    afp = sub[(sub["factor"] == "afp_ng_ml") & (sub["row"] == "comparison")]
    assert afp["level"].tolist() == ["<25 vs 25-400", "<25 vs >400", "25-400 vs >400"]
    small = sub[(sub["row"] == "level") & (sub["n"] < 10)]
    assert small["auc"].isna().all() and small["reason"].str.startswith("n = ").all()
    surv = out["survival"]
    assert set(surv["split_by"]) == {"youden", "h_score_median"}
    assert set(surv["endpoint"]) == {"time_to_mvi", "os"}
    cmp = surv[surv["row"] == "comparison"]
    assert len(cmp) == 4 and cmp["hr"].notna().all() and cmp["logrank_p"].notna().all()
    assert surv.loc[surv["split_by"] == "h_score_median", "score"].str.contains("no h_score").all()
    groups = surv[(surv["row"] == "group") & (surv["split_by"] == "youden")]
    assert groups.groupby("endpoint")["n"].sum().tolist() == [85, 85]


def test_single_model_gives_header_only_pair_tables(cohort):
    d, tables, preds = cohort
    out = run(d, tables, preds, "pooled_train", ["Model-Clinical-LR"], name="single")
    assert out["delong"].empty and list(out["delong"].columns) == COLUMNS["delong"]
    assert out["nri_idi"].empty
    disc = out["discrimination"]
    assert disc["n"].tolist() == [280] and disc["split"].tolist() == ["apparent"]
    assert (out["subgroups"]["model"] == "Model-Clinical-LR").all()
    assert not out["survival"].empty


def test_degenerate_predictions_give_na_rows(cohort, tmp_path):
    d, tables, preds = cohort
    bad = dict(preds)
    # NaN risk in one model, a tiny center (n < 10) for another
    frame = pd.read_csv(preds[("TX", "Model-DR")], sep="\t", dtype={"patient_id": str})
    frame.loc[3, "risk"] = np.nan
    bad[("TX", "Model-DR")] = tmp_path / "nan.tsv"
    frame.to_csv(bad[("TX", "Model-DR")], sep="\t", index=False, na_rep="NA")
    out = run(d, tables, bad, "TX", ["Model-CR-DR", "Model-DR"], name="nan")
    disc = out["discrimination"].set_index("model")
    assert np.isnan(disc.loc["Model-DR", "auc"]) and "NaN" in disc.loc["Model-DR", "reason"]
    assert disc.loc["Model-CR-DR", "reason"] == ""
    assert out["delong"]["reason"].str.contains("NaN").all() and out["delong"]["p"].isna().all()

    # one class only and a center of 8 patients
    frame = pd.read_csv(preds[("TX", "Model-CR-DR")], sep="\t", dtype={"patient_id": str})
    frame["mvi"] = 0
    bad[("TX", "Model-CR-DR")] = tmp_path / "oneclass.tsv"
    frame.to_csv(bad[("TX", "Model-CR-DR")], sep="\t", index=False, na_rep="NA")
    out = run(d, tables, bad, "TX", ["Model-CR-DR"], name="oneclass")
    row = out["discrimination"].iloc[0]
    assert np.isnan(row["auc"]) and "0 event(s)" in row["reason"]
    assert out["calibration"]["reason"].str.contains("0 event").all()
    surv = out["survival"]
    tte = surv[(surv["endpoint"] == "time_to_mvi") & (surv["row"] == "comparison")]
    assert tte["hr"].isna().all() and tte["reason"].str.contains("no events").all()

    frame.head(8).assign(mvi=[0, 1] * 4).to_csv(tmp_path / "tiny.tsv", sep="\t", index=False)
    bad[("TX", "Model-CR-DR")] = tmp_path / "tiny.tsv"
    out = run(d, tables, bad, "TX", ["Model-CR-DR"], name="tiny")
    assert out["discrimination"]["reason"].tolist() == ["n = 8 < 10"]
    assert (out["survival"]["reason"] == "n = 8 < 10").all()


def test_missing_prediction_column_is_an_input_error(cohort, tmp_path):
    d, tables, preds = cohort
    frame = pd.read_csv(preds[("TX", "Model-CR-DR")], sep="\t").drop(columns=["os_days"])
    frame.to_csv(tmp_path / "x.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"x.tsv: predictions file lacks column\(s\) os_days"):
        analyses.read_predictions([tmp_path / "x.tsv"], ["Model-CR-DR"])
    frame = pd.read_csv(preds[("TX", "Model-CR-DR")], sep="\t")
    frame.to_csv(tmp_path / "Model-DR.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="named for Model-DR but its model column says"):
        analyses.read_predictions([tmp_path / "Model-DR.tsv"], ["Model-DR"])


@pytest.mark.r
def test_r_engine_matches_python_engine(cohort):
    d, tables, preds = cohort
    models = ["Model-CR-DR", "Model-DR", "Model-Clinical-LR"]
    r = run(d, tables, preds, "TX", models, engine="r", name="r")
    py = run(d, tables, preds, "TX", models, engine="python", name="py")
    for name in COLUMNS:
        a, b = r[name], py[name]
        assert a.shape == b.shape, name
        num = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c]) and c != "engine"]
        x, y = a[num].to_numpy(float), b[num].to_numpy(float)
        assert (np.isnan(x) == np.isnan(y)).all(), name
        assert np.nanmax(np.abs(x - y)) < 1e-6, name
        assert (a["reason"] == b["reason"]).all(), name


@pytest.mark.parametrize("engine", ["python", pytest.param("r", marks=pytest.mark.r)])
def test_write_table1(cohort, engine):
    d, tables, _ = cohort
    out = write_table1(
        [tables["TA"], tables["TB"]],
        [tables["TX"], tables["TA"]],
        ["TX", "TA2"],
        d / f"table1_{engine}.tsv",
        engine=engine,
    )
    back = pd.read_csv(
        d / f"table1_{engine}.tsv", sep="\t", keep_default_na=False, na_values=["NA"]
    )
    assert list(back.columns) == TABLE1_OUTPUT
    assert back["external_center"].unique().tolist() == ["TX", "TA2"]
    head = back[(back["level"] == "") & (back["external_center"] == "TX")].set_index("variable")
    assert head.loc["age", "train"].count("±") == 1 or "(" in head.loc["age", "train"]
    assert head["p"].notna().sum() >= 15
    assert len(out) == len(back)


def test_h_score_column_splits_at_the_training_median(cohort, tmp_path):
    d, tables, preds = cohort
    withh = dict(preds)
    medians = []
    for center in ("TA", "TB", "TX"):
        frame = pd.read_csv(preds[(center, "Model-CR-DR")], sep="\t", dtype={"patient_id": str})
        frame["h_score"] = np.linspace(0.2, 0.9, len(frame)) ** (2 if center == "TA" else 1)
        if center != "TX":
            medians.append(frame["h_score"])
        withh[(center, "Model-CR-DR")] = tmp_path / f"{center}.tsv"
        frame.to_csv(withh[(center, "Model-CR-DR")], sep="\t", index=False)
    out = run(d, tables, withh, "TX", ["Model-CR-DR"], name="hscore")
    h = out["survival"][out["survival"]["split_by"] == "h_score_median"]
    assert (h["score"] == "h_score").all()
    assert h["threshold"].iloc[0] == pytest.approx(float(np.median(pd.concat(medians))))
    groups = h[(h["row"] == "group") & (h["endpoint"] == "os")].set_index("group")
    tx = np.linspace(0.2, 0.9, 85)
    assert groups.loc["high", "n"] == int(np.sum(tx > h["threshold"].iloc[0]))
