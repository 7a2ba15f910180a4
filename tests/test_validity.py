"""The validity benchmark against the synthetic truth: a model that is the true risk has no
gap, a noisy one a negative gap; fused models are compared with clinical-only ones."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from mtnet.synth.model import ceilings_record, draw_center_table
from mtnet.stats.validity import TRUE_RISK, validity_table
from mtnet.tables import prediction_frame, write_predictions, write_tsv


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    settings = {"preset": "paper", "center": "ZCPH", "role": "external", "n_patients": 600, "n_events": 70}
    df = draw_center_table(settings, seed=11)
    truth = root / "synth" / "ZCPH" / "truth"
    truth.mkdir(parents=True)
    write_tsv(df[["patient_id", *TRUE_RISK.values(), "mvi"]], truth / "patients.tsv")
    (truth / "ceilings.json").write_text(json.dumps(ceilings_record("external", 70 / 600, 11)))
    df["center"] = "ZCPH"
    noise = np.random.default_rng(0).normal(0, 3, len(df))

    def logit(p):
        return np.log(p / (1 - p))

    risks = {
        # the clinical Bayes risk, barely perturbed (an identical ranking has no test)
        "Model-Clinical-LR": 1 / (1 + np.exp(-(logit(df["risk_clinical"]) + noise / 100))),
        "Model-Radiomics": 1 / (1 + np.exp(-(logit(df["risk_image"]) + noise))),
        "Model-Radiomics-CR": df["risk_true"],
    }
    for model, risk in risks.items():
        write_predictions(prediction_frame(df, model, risk, "external"),
                          root / "predictions" / "ZCPH" / f"{model}.tsv")
    return root


def test_gaps_to_the_true_risks(results):
    table = validity_table(results)
    lr = table[table["model"] == "Model-Clinical-LR"].iloc[0]
    assert lr["information"] == "clinical" and abs(lr["gap"]) < 0.005
    assert lr["gap_ci_low"] < 0 < lr["gap_ci_high"] and lr["n"] == 600 and lr["n_events"] == 70
    noisy = table[(table["row"] == "model") & (table["model"] == "Model-Radiomics")].iloc[0]
    assert noisy["information"] == "image" and noisy["gap"] < -0.05 and noisy["gap_ci_high"] < 0
    assert noisy["gap_p"] < 0.05
    fused = table[table["row"] == "comparison"]
    assert fused[["model", "comparator"]].values.tolist() == [["Model-Radiomics-CR", "Model-Clinical-LR"]]
    assert fused["gap"].iloc[0] > 0 and fused["gap_p"].iloc[0] < 0.05
    ceilings = json.loads((results / "synth/ZCPH/truth/ceilings.json").read_text())["auc"]
    assert (table.loc[table["row"] == "model", "ceiling"].tolist()
            == [ceilings[i] for i in table.loc[table["row"] == "model", "information"]])


def test_cli_prints_and_writes(results, tmp_path):
    out = tmp_path / "v.tsv"
    res = subprocess.run([sys.executable, "-m", "mtnet.cli", "validity", str(results), "--out", str(out)],
                         capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src")})
    assert res.returncode == 0, res.stderr
    assert "Model-Radiomics-CR vs Model-Clinical-LR" in res.stdout and out.exists()
    empty = subprocess.run([sys.executable, "-m", "mtnet.cli", "validity", str(tmp_path)],
                           capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src")})
    assert empty.returncode == 2 and empty.stderr.startswith("error: ")
