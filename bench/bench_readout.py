"""What limits MTnet's image path on a synthetic cohort: the read-out, or what the features hold?

Issue 13's image goals are missed at the ``cpu`` size (docs/mtnet.md, "The `cpu` size").
Two diagnostics on a finished run (``MTNET_BENCH_RESULTS=<run>/results``, default
``results/``), for the fold models of ``MTNET_READOUT_MODEL`` (default Model-DR):

- ``readout``: the MVI read-out refitted on each fold model's frozen pooled features
  (``MTnet.pool``, what the fusion head reads; plus the encoded factors where the model has
  a clinical block): scikit-learn ``LogisticRegressionCV`` (L2, C by stratified 5-fold
  log-loss), fitted on that fold's training patients of the split file; the external
  centers' risk is the mean over the folds, as the model's ensemble. Feature sets: all
  pooled features; the input CT's own four region statistics only; the input plus encoder
  level 0. Beside them, the network's own external AUC from ``results/predictions``.
- ``grid``: no network at all: the region statistics (``network.region_stats``) of the CT
  and of its Laplacian (CT less its 3³ local mean: the fine texture) in the model's field
  of view at its grid and at twice the grid, an L2 logistic regression on all training
  patients, the external AUC. It bounds what a network can read from the view at that grid.

No truth is read: every number is an AUC against the outcome. Usage:
``MTNET_BENCH_RESULTS=results python bench/bench_readout.py`` (also ``make bench``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def _lr(x, y, seed: int):
    """Standardise, then an L2 logistic regression with C by 5-fold cross-validated
    log-loss; returns a function of new rows' probabilities."""
    import numpy as np
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=list(CS), cv=StratifiedKFold(5, shuffle=True, random_state=seed), l1_ratios=(0.0,),
        scoring="neg_log_loss", max_iter=5000, use_legacy_attributes=False))
    model.fit(x, np.asarray(y, int))
    return lambda rows: model.predict_proba(rows)[:, 1]


def _auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(y, p)), 3)


def _region_features(crops) -> "np.ndarray":
    """Per patient: region_stats of the CT and of its Laplacian inside the view (8 values)."""
    import numpy as np
    import torch

    from mtnet.model.mtnet.network import region_stats

    image = torch.from_numpy(np.ascontiguousarray(crops["image"], np.float32))[:, None]
    tumor = torch.from_numpy(np.ascontiguousarray(crops["tumor"], np.float32))[:, None]
    out = []
    for s in range(0, len(image), 64):
        x, m = image[s:s + 64], tumor[s:s + 64]
        laplacian = x - torch.nn.functional.avg_pool3d(x, 3, stride=1, padding=1,
                                                       count_include_pad=False)
        out.append(torch.cat([region_stats(x, m), region_stats(laplacian, m)], dim=1).numpy())
    return np.concatenate(out).astype(np.float64)


def run(results=None, model_name=None) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO / "bench"))
    from bench_probe import _features, synthetic_cohort
    from mtnet.model.mtnet.family import _crops, _fold_models
    from mtnet.tables import read_tsv

    torch.set_num_threads(1)
    results = Path(results or os.environ.get("MTNET_BENCH_RESULTS", REPO / "results"))
    model_name = model_name or os.environ.get("MTNET_READOUT_MODEL", "Model-DR")
    folder = results / "models" / model_name / "model"
    if not folder.is_dir():
        return {"skipped": f"no {folder} (run the workflow first, or set MTNET_BENCH_RESULTS)"}
    cohort = synthetic_cohort(results)
    if cohort is None:
        return {"skipped": f"no synthetic truth under {results / 'synth'}"}
    train, external, roi = cohort
    train = train[pd.to_numeric(train["mvi"], errors="coerce").notna()].reset_index(drop=True)
    external = {c: df[pd.to_numeric(df["mvi"], errors="coerce").notna()].reset_index(drop=True)
                for c, df in external.items()}
    folds = read_tsv(results / "splits" / "folds.tsv")
    train = train.merge(folds[["center", "patient_id", "fold"]], on=["center", "patient_id"])
    y = train["mvi"].to_numpy(int)
    _, models = _fold_models(folder)
    first = models[0][0]
    if not first.config.image:
        return {"skipped": f"{model_name} has no image path"}
    view = first.view
    crops = _crops(train, roi, first.grid, view)
    crops_ext = {c: _crops(df, roi, first.grid, view) for c, df in external.items()}

    # the network's own external AUC, from its predictions
    network = {}
    for c, df in external.items():
        pred = read_tsv(results / "predictions" / c / f"{model_name}.tsv")
        merged = df[["patient_id", "mvi"]].merge(pred[["patient_id", "risk"]], on="patient_id")
        network[c] = _auc(merged["mvi"].astype(int), merged["risk"])

    # the read-out refitted on the frozen features, fold by fold
    sets, columns = ["pooled"], {}
    if first.config.pooling == "stats":  # region statistics: the input's come first
        width_input = 4 * (2 if first.config.mask_channel else 1)
        columns = {"input_ct": slice(0, width_input),
                   "input_and_level0": slice(0, width_input + 4 * first.config.channels[0])}
        sets += list(columns)
    if models[0][1] is not None:
        sets.append("pooled_and_factors")
    ext_risk = {name: {c: [] for c in external} for name in sets}
    oof = {name: np.full(len(train), np.nan) for name in sets}
    widths = {}
    for index, (model, enc) in enumerate(models, start=1):
        held = (train["fold"] == index).to_numpy()
        f_train = _features(model, crops)["head"]
        f_ext = {c: _features(model, crops_ext[c])["head"] for c in external}
        for name in sets:
            if name == "pooled_and_factors":
                x = np.hstack([f_train, enc.standardized(train)])
                x_ext = {c: np.hstack([f_ext[c], enc.standardized(df, center=c)])
                         for c, df in external.items()}
            else:
                cols = columns[name] if name in columns else slice(None)
                x, x_ext = f_train[:, cols], {c: f[:, cols] for c, f in f_ext.items()}
            widths[name] = int(x.shape[1])
            predict = _lr(x[~held], y[~held], seed=index)
            oof[name][held] = predict(x[held])
            for c in external:
                ext_risk[name][c].append(predict(x_ext[c]))
    readout = {name: {"features": widths[name], "oof_auc": _auc(y, oof[name]),
                      **{c: _auc(external[c]["mvi"].astype(int), np.mean(ext_risk[name][c], 0))
                         for c in external}} for name in sets}

    # what the field of view holds at the model's grid and at twice it
    grid = {}
    for factor in (1, 2):
        g = tuple(int(v) * factor for v in first.grid)
        a = _region_features(crops if factor == 1 else _crops(train, roi, g, view))
        b = {c: _region_features(crops_ext[c] if factor == 1 else _crops(df, roi, g, view))
             for c, df in external.items()}
        row = {}
        for name, cols in (("ct", slice(0, 4)), ("ct_and_laplacian", slice(0, 8))):
            predict = _lr(a[:, cols], y, seed=0)
            row[name] = {c: _auc(external[c]["mvi"].astype(int), predict(b[c][:, cols]))
                         for c in external}
        grid["x".join(map(str, g))] = row
    return {"model": model_name, "results": str(results), "folds": len(models),
            "n_train": len(train), "events_train": int(y.sum()),
            "view": {"view": view[0], "margin_mm": view[1], "grid": list(first.grid)},
            "network_external_auc": network, "readout": readout, "grid": grid}


if __name__ == "__main__":
    import json

    print(json.dumps(run(*sys.argv[1:3]), indent=2))
