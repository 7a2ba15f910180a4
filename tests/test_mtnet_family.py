"""MTnet through the registry as the workflow runs it: one job per fold (killed with SIGKILL
and rerun: identical weights), the fold ensemble, predictions with the H-score."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO
from mtnet.model import registry
from mtnet.model.mtnet.variants import PRESETS
from mtnet.model.splits import write_folds
from mtnet.tables import read_tsv
from mtnet_toy import toy_cohort, write_roi
from stats_synthetic import clinical_table, write_table

SETTINGS = {"size": "tiny", "device": "cpu", "threads": 1, "overrides": {"epochs": 4}}


def _center(root: Path, name: str, n: int, seed: int):
    """A center as the stages leave it: clinical.tsv and tumor/{center}/roi/*.npz; the
    clinical table's outcome is the toy crops' (a bright blob)."""
    toy = toy_cohort(n, seed, grid=24, centers=(name,))
    table = clinical_table(name, n, seed)
    table["patient_id"] = toy["crops"]["patient_id"]
    table["mvi"] = toy["y"]
    write_roi(root / "tumor" / name / "roi", toy["crops"])
    (root / "ingest" / name).mkdir(parents=True)
    return write_table(table, root / "ingest" / name / "clinical.tsv")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mtnet")
    tables = [_center(root, "TA", 24, 1), _center(root, "TB", 22, 2)]
    ext = _center(root, "TX", 12, 3)
    write_folds(tables, root / "folds.tsv", k=3, seed=5)
    inputs = {"clinical": tables, "splits": root / "folds.tsv",
              "roi": [root / "tumor" / c / "roi" for c in ("TA", "TB")]}
    return root, inputs, ext


def _train(spec, root, inputs, folds=(1, 2, 3)):
    model_dir = root / "models" / spec.name
    for k in folds:
        spec.call("train_fold", inputs=inputs, fold_dir=model_dir / "folds" / str(k), fold=k,
                  settings=SETTINGS, seed=11, threads=1)
    out = {"model": model_dir / "model", "summary": model_dir / "summary.tsv", "log": model_dir / "training_log.tsv"}
    spec.call("train", inputs={**inputs, "folds": [model_dir / "folds" / str(k) for k in folds]},
              outputs=out, settings=SETTINGS, seed=11, threads=1)
    return model_dir


@pytest.mark.parametrize("name", ["Model-CR-DR", "Model-CR", "Model-Logistic-CR-DR"])
def test_folds_ensemble_and_predictions(run, name):
    root, inputs, ext = run
    spec = registry.get(name)
    model_dir = _train(spec, root, inputs)
    oof = read_tsv(model_dir / "model" / "oof.tsv")
    assert len(oof) == 46 and sorted(oof["fold"].unique()) == [1, 2, 3]
    summary = read_tsv(model_dir / "summary.tsv")
    assert summary["fold"].tolist() == [1, 2, 3] and (summary["epochs_run"] >= 1).all()
    log = read_tsv(model_dir / "training_log.tsv")
    assert set(log["fold"]) == {1, 2, 3} and "seg_dice" in log
    pred_in = {"model": model_dir / "model", "clinical": ext, "roi": root / "tumor" / "TX" / "roi"}
    out = spec.call("predict", inputs=pred_in, output=root / f"{name}-TX.tsv", center="TX",
                    role="external", settings=SETTINGS, threads=1)
    assert len(out) == 12 and out["risk"].between(0, 1).all() and (out["split"] == "external").all()
    if name == "Model-CR":
        assert out["h_score"].isna().all()  # no image, no H-score
    else:
        assert out["h_score"].between(0, 1).all()
    ta = spec.call("predict", inputs={**pred_in, "clinical": inputs["clinical"][0],
                                      "roi": root / "tumor" / "TA" / "roi"},
                   output=root / f"{name}-TA.tsv", center="TA", role="train", settings=SETTINGS, threads=1)
    assert ta["split"].value_counts().to_dict() == {"apparent": 24, "oof": 24}
    if name == "Model-Logistic-CR-DR":
        assert (model_dir / "model" / "stepwise.tsv").exists()


def test_the_same_inputs_give_the_same_bytes(run, tmp_path):
    root, inputs, ext = run
    spec = registry.get("Model-DR")
    a = _train(spec, root, inputs, folds=(1,))
    first = (a / "folds" / "1" / "weights.pt").read_bytes()
    heldout = (a / "folds" / "1" / "heldout.tsv").read_bytes()
    spec.call("train_fold", inputs=inputs, fold_dir=tmp_path / "again", fold=1, settings=SETTINGS,
              seed=11, threads=1)
    assert (tmp_path / "again" / "heldout.tsv").read_bytes() == heldout
    one = torch.load(a / "folds" / "1" / "weights.pt", weights_only=True)
    two = torch.load(tmp_path / "again" / "weights.pt", weights_only=True)
    assert all(torch.equal(one[k], two[k]) for k in one) and first


KILL_SCRIPT = """
import sys, pickle
from mtnet.model import registry
inputs, fold_dir, settings = pickle.load(open(sys.argv[1], "rb"))
registry.get("Model-CR-DR").call("train_fold", inputs=inputs, fold_dir=fold_dir, fold=2,
                                 settings=settings, seed=11, threads=1)
"""


@pytest.mark.slow
def test_a_fold_job_killed_mid_training_resumes_to_identical_weights(run, tmp_path):
    import pickle

    root, inputs, _ = run
    settings = {**SETTINGS, "overrides": {"epochs": 40, "patience": 0}}
    ref_dir = tmp_path / "models" / "Model-CR-DR" / "folds" / "ref"
    registry.get("Model-CR-DR").call("train_fold", inputs=inputs, fold_dir=ref_dir, fold=2,
                                     settings=settings, seed=11, threads=1)
    killed_dir = tmp_path / "killed" / "Model-CR-DR" / "folds" / "2"
    args = tmp_path / "args.pkl"
    args.write_bytes(pickle.dumps((inputs, killed_dir, settings)))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(args)], env=env)
    ckpts = tmp_path / "killed" / "Model-CR-DR" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not list(ckpts.glob("*/train_log.tsv")):
        time.sleep(0.1)
    logs = list(ckpts.glob("*/train_log.tsv"))
    assert logs and proc.poll() is None, "the job ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "weights.pt").exists()
    epochs_before = len(pd.read_csv(logs[0], sep="\t"))
    assert 1 <= epochs_before < 40
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(args)], env=env, check=True)
    one = torch.load(ref_dir / "weights.pt", weights_only=True)
    two = torch.load(killed_dir / "weights.pt", weights_only=True)
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert (ref_dir / "heldout.tsv").read_bytes() == (killed_dir / "heldout.tsv").read_bytes()
    assert not ckpts.exists() or not any(ckpts.iterdir())  # removed once the fold is done


def test_registry_and_variants_agree_on_what_each_variant_sees():
    from mtnet.model.mtnet.variants import VARIANTS

    mtnet = {name for name, spec in registry.MODELS.items() if spec.family == "mtnet"}
    assert mtnet == set(VARIANTS)
    for name in mtnet:
        spec = registry.get(name)
        assert spec.information == VARIANTS[name]["information"], name
        assert ("roi" in spec.inputs) == VARIANTS[name]["image"], name


def test_a_tumor_view_from_the_config_reaches_every_fold_and_the_ensemble(run, tmp_path):
    """`mtnet: overrides: {view: tumor, ...}` as the workflow passes it, with the `cpu`
    size's other image settings (region statistics pooling, batch norm, standardised
    features, the inner loss monitored): each fold model is trained on, saved with and
    predicted through the lesion's cube; the ensemble reads it back."""
    root, inputs, ext = run
    spec = registry.get("Model-DR")
    cpu_image = {k: PRESETS["cpu"][k] for k in ("pooling", "norm", "feature_norm", "monitor")}
    settings = {**SETTINGS, "overrides": {**SETTINGS["overrides"], "view": "tumor",
                                          "view_margin_mm": 6.0, **cpu_image}}
    model_dir = tmp_path / "models" / "Model-DR"
    for k in (1, 2):
        spec.call("train_fold", inputs=inputs, fold_dir=model_dir / "folds" / str(k), fold=k,
                  settings=settings, seed=11, threads=1)
        meta = (model_dir / "folds" / str(k) / "model.json").read_text()
        assert '"view": "tumor"' in meta and '"view_margin_mm": 6.0' in meta
        assert '"pooling": "stats"' in meta and '"norm": "batch"' in meta
    spec.call("train", inputs={**inputs, "folds": [model_dir / "folds" / str(k) for k in (1, 2)]},
              outputs={"model": model_dir / "model", "summary": model_dir / "summary.tsv",
                       "log": model_dir / "training_log.tsv"}, settings=settings, seed=11, threads=1)
    out = spec.call("predict", inputs={"model": model_dir / "model", "clinical": ext,
                                       "roi": root / "tumor" / "TX" / "roi"},
                    output=tmp_path / "TX.tsv", center="TX", role="external", settings=settings,
                    threads=1)
    assert len(out) == 12 and out["risk"].between(0, 1).all() and out["h_score"].between(0, 1).all()
