"""A linear probe of MTnet's image features: do they carry the generator's image traits?

Issue 13's goal: a linear read-out of the pooled image features, fitted on the training
centers, predicts the heterogeneity and anti-corona traits on the external center with
Pearson r >= 0.8. On a finished run of a synthetic cohort (``MTNET_BENCH_RESULTS=<run>/results``,
default ``results/``) and for each fold model of ``MTNET_PROBE_MODEL`` (default Model-CR-DR):

- features, two sets per patient: ``head``, the pooled image features the fusion head
  reads (``MTnet.pool``: region statistics of every level at the ``cpu`` size, the
  bottleneck's mean at ``paper``), the issue's "pooled image features"; ``levels``, every
  encoder level's mean over the whole crop and over the tumor mask;
- a ridge regression (scikit-learn ``RidgeCV``, its penalty by leave-one-out on the
  training patients, features standardised on them) from the features to each trait of
  ``truth/patients.tsv``, fitted on the training centers;
- its prediction for the external centers' patients, averaged over the fold models;
  Pearson r with the trait (and Spearman, for a monotone read-out).

The truth is read here, to measure, never by a model. Usage:
``MTNET_BENCH_RESULTS=results python bench/bench_probe.py`` (also ``make bench``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAITS = ("heterogeneity", "margin_irregularity", "anti_corona", "capsule", "vessel_contact")
GOAL_R = {"heterogeneity": 0.8, "anti_corona": 0.8}
FEATURE_SETS = ("head", "levels")


def _features(model, crops) -> dict[str, "np.ndarray"]:
    """Per patient: ``head``, the pooled image features the fusion head reads
    (``MTnet.pool``); ``levels``, every encoder level's mean over the crop and over the tumor."""
    import numpy as np
    import torch

    from mtnet.model.mtnet.network import global_pool, masked_pool

    net = model.network.eval()
    image = torch.from_numpy(np.ascontiguousarray(crops["image"], np.float32))[:, None]
    tumor = torch.from_numpy(np.ascontiguousarray(crops["tumor"], np.float32))[:, None]
    rows = {name: [] for name in FEATURE_SETS}
    with torch.no_grad():
        for s in range(0, len(image), 8):
            pooled, levels = net.pool(image[s:s + 8], tumor[s:s + 8])
            rows["head"].append(pooled.numpy())
            rows["levels"].append(torch.cat([torch.cat([global_pool(f), masked_pool(f, tumor[s:s + 8])],
                                                       dim=1) for f in levels], dim=1).numpy())
    return {name: np.concatenate(r).astype(np.float64) for name, r in rows.items()}


def synthetic_cohort(results: Path, traits: bool = False):
    """(training patients, {external center: patients}, {center: roi folder}) of a finished
    run of a synthetic cohort, the training centers' patients in one frame (the ingested
    clinical table, and the generator's ``trait_*`` with ``traits``); None without truth."""
    import pandas as pd

    from mtnet.tables import read_tsv

    roles = {}
    for path in sorted((results / "synth").glob("*/truth/ceilings.json")):
        roles[path.parent.parent.name] = json.loads(path.read_text())["role"]
    if not roles:
        return None
    frames = {}
    for center in roles:
        frame = read_tsv(results / "ingest" / center / "clinical.tsv").assign(center=center)
        if traits:
            truth = read_tsv(results / "synth" / center / "truth" / "patients.tsv")
            frame = frame.merge(truth[["patient_id"] + [f"trait_{t}" for t in TRAITS]],
                                on="patient_id")
        frames[center] = frame
    train = pd.concat([frames[c] for c in roles if roles[c] == "train"], ignore_index=True)
    external = {c: frames[c] for c in roles if roles[c] == "external"}
    return train, external, {c: results / "tumor" / c / "roi" for c in roles}


def run(results=None, model_name=None) -> dict:
    import numpy as np
    from scipy import stats
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import StandardScaler

    sys.path.insert(0, str(REPO / "src"))
    from mtnet.model.mtnet.family import _crops, _fold_models

    results = Path(results or os.environ.get("MTNET_BENCH_RESULTS", REPO / "results"))
    model_name = model_name or os.environ.get("MTNET_PROBE_MODEL", "Model-CR-DR")
    folder = results / "models" / model_name / "model"
    if not folder.is_dir():
        return {"skipped": f"no {folder} (run the workflow first, or set MTNET_BENCH_RESULTS)"}
    cohort = synthetic_cohort(results, traits=True)
    if cohort is None:
        return {"skipped": f"no synthetic truth under {results / 'synth'}"}
    train, external, roi = cohort

    _, models = _fold_models(folder)
    preds = {f: {c: {t: [] for t in TRAITS} for c in external} for f in FEATURE_SETS}
    fitted_r = {f: {t: [] for t in TRAITS} for f in FEATURE_SETS}
    widths = {}
    for model, _enc in models:
        if not model.config.image:
            return {"skipped": f"{model_name} has no image path"}
        f_train = _features(model, _crops(train, roi, model.grid, model.view))
        f_ext = {c: _features(model, _crops(df, roi, model.grid, model.view))
                 for c, df in external.items()}
        for fs in FEATURE_SETS:
            scaler = StandardScaler().fit(f_train[fs])
            xs = scaler.transform(f_train[fs])
            widths[fs] = int(xs.shape[1])
            for trait in TRAITS:
                y = train[f"trait_{trait}"].to_numpy(float)
                probe = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit(xs, y)
                fitted_r[fs][trait].append(float(np.corrcoef(probe.predict(xs), y)[0, 1]))
                for c in external:
                    preds[fs][c][trait].append(probe.predict(scaler.transform(f_ext[c][fs])))
    out = {"model": model_name, "results": str(results), "folds": len(models),
           "n_train": len(train), "features": widths,
           "feature_sets": {"head": "the pooled image features the fusion head reads (MTnet.pool)",
                            "levels": "every encoder level's mean over the crop and the tumor"},
           "centers": {}}
    for c, df in external.items():
        out["centers"][c] = {"n": len(df)}
        for fs in FEATURE_SETS:
            rows = {}
            for trait in TRAITS:
                y = df[f"trait_{trait}"].to_numpy(float)
                p = np.mean(preds[fs][c][trait], axis=0)
                rows[trait] = {"pearson_r": round(float(stats.pearsonr(p, y)[0]), 3),
                               "spearman_rho": round(float(stats.spearmanr(p, y)[0]), 3),
                               "train_fit_r": round(float(np.mean(fitted_r[fs][trait])), 3)}
                if trait in GOAL_R:
                    rows[trait].update(goal_r=GOAL_R[trait],
                                       met=rows[trait]["pearson_r"] >= GOAL_R[trait])
            out["centers"][c][fs] = rows
    return out


if __name__ == "__main__":
    print(json.dumps(run(*sys.argv[1:3]), indent=2))
