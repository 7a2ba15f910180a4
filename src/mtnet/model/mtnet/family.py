"""MTnet in the workflow: one training job per variant and fold, their fold ensemble as the
model, and predictions for a center (the registry's entry points of the ``mtnet`` family).

- :func:`train_fold` (rule ``train_network``, one job per fold of the split file; a GPU job
  on a cluster): the clinical factors encoded (:class:`mtnet.factors.Encoding`) on the
  fold's training patients only, the variant trained on them (early stopping on an inner
  split stratified by center and outcome), the fold's held-out patients predicted
  (``heldout.tsv``: their out-of-fold risk and H-score). A killed job resumes from the
  last epoch's checkpoint (``results/models/{model}/checkpoints/{fold}-{key}``, kept
  outside the job's output so that a rerun finds it; removed once the fold is done).
- :func:`train_model` (rule ``train_model``): the k fold models are the model, applied to a
  new patient as their mean risk and mean H-score (the fold ensemble, docs/mtnet.md); it
  collects the out-of-fold rows (``oof.tsv``), a summary per fold and the epochs of every
  fold (``training_log.tsv``).
- :func:`predict_model` (rule ``predict_model``): the ensemble on a center's crops and
  factors, each fold model encoding the factors with its own encoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from mtnet.errors import InputError
from mtnet.model.mtnet.files import ENCODING_JSON, HELDOUT_TSV, LOG_TSV, MODEL_JSON, STEPWISE_TSV
from mtnet.seeds import derive_seed

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["fold", "n_train", "events_train", "n_inner", "events_inner", "epochs_run",
                   "best_epoch", "best_inner_auc", "stopped_early", "parameters", "device",
                   "clinical_factors"]


def _settings(settings: dict) -> tuple[dict, str]:
    """(MTnet's settings for :func:`variants.resolve`, the device) from the config's
    ``mtnet`` section."""
    from mtnet.config import section

    s = section("mtnet", settings)
    return {"size": s["size"], "threads": s["threads"], **(s["overrides"] or {})}, s["device"]


def _crops(patients: pd.DataFrame, roi_dirs: dict, grid, view: tuple[str, float]):
    """The crops of ``patients`` (center, patient_id), center by center, in their order,
    on ``grid`` through ``view`` (field of view, margin in mm)."""
    from mtnet.model.mtnet.data import load_crops

    parts = []
    for center, rows in patients.groupby("center", sort=False):
        if center not in roi_dirs:
            raise InputError("no roi folder for this center", center=center,
                             fix="run the tumor stage for it")
        parts.append((rows.index, load_crops([roi_dirs[center]], rows["patient_id"].tolist(),
                                             grid, *view)))
    order = np.argsort(np.concatenate([idx.to_numpy() for idx, _ in parts]), kind="stable")
    return {k: np.concatenate([c[k] for _, c in parts])[order] for k in parts[0][1]}


def _roi_dirs(paths) -> dict:
    # results/tumor/{center}/roi
    return {Path(p).parent.name: Path(p) for p in paths or []}


def _clinical_block(spec, train: pd.DataFrame, other: pd.DataFrame | None = None):
    """(encoding, standardised training matrix, names, other's matrix); Nones without it."""
    from mtnet.factors import Encoding
    from mtnet.model.mtnet.variants import VARIANTS

    if not VARIANTS[spec.name]["clinical"]:
        return None, None, [], None
    enc = Encoding.fit(train)
    return enc, enc.standardized(train), enc.names, None if other is None else enc.standardized(other)


def _checkpoint_dir(model_dir: Path, fold: int, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return model_dir / "checkpoints" / f"{fold}-{digest}"


def train_fold(spec, inputs: dict, fold_dir, fold: int, settings: dict, seed: int, threads: int = 1):
    """One fold: train on the other folds' patients, predict this fold's (module docstring)."""
    from mtnet.model.mtnet.api import predict_mtnet, save, train_mtnet
    from mtnet.model.mtnet.variants import VARIANTS, resolve
    from mtnet.model.predictions import oof_frame
    from mtnet.model.splits import fold_of, read_folds
    from mtnet.tables import read_clinical_tables, write_tsv

    mt_settings, device = _settings(settings)
    resolved = resolve(spec.name, mt_settings)
    grid, view = resolved["grid"], (resolved["view"], resolved["view_margin_mm"])
    clin = read_clinical_tables(inputs["clinical"])
    clin = clin[pd.to_numeric(clin["mvi"], errors="coerce").notna()].reset_index(drop=True)
    held = fold_of(read_folds(inputs["splits"]), clin) == int(fold)
    if not held.any():
        raise InputError(f"fold {fold} has no patient in the split file", path=inputs["splits"],
                         fix="re-run rule splits")
    train, test = clin[~held].reset_index(drop=True), clin[held].reset_index(drop=True)
    enc, x_train, names, x_test = _clinical_block(spec, train, test)
    image = VARIANTS[spec.name]["image"]
    roi = _roi_dirs(inputs.get("roi"))
    crops_train = _crops(train, roi, grid, view) if image else None
    crops_test = _crops(test, roi, grid, view) if image else None
    fold_seed = derive_seed(seed, spec.name, "fold", int(fold))
    fold_dir = Path(fold_dir)
    work = _checkpoint_dir(fold_dir.parent.parent, int(fold),
                           {"settings": mt_settings, "seed": fold_seed, "n": len(train),
                            "patients": train["patient_id"].tolist()})
    log.info("%s fold %s: %d training patients (%d events), %d held out; checkpoints in %s",
             spec.name, fold, len(train), int(train["mvi"].sum()), len(test), work)
    model = train_mtnet(spec.name, crops_train, x_train, names, train["mvi"].to_numpy(float),
                        train["center"].to_numpy(), mt_settings, fold_seed, device=device,
                        workdir=work, resume=True)
    save(model, fold_dir)
    if enc is not None:
        (fold_dir / ENCODING_JSON).write_text(json.dumps(enc.to_dict(), indent=1) + "\n")
    risk, h = predict_mtnet(model, crops_test, x_test, device=device)
    write_tsv(oof_frame(test, np.full(len(test), int(fold)), risk, h), fold_dir / HELDOUT_TSV)
    shutil.rmtree(work, ignore_errors=True)
    if work.parent.exists() and not any(work.parent.iterdir()):
        work.parent.rmdir()
    return model


# --------------------------------------------------------------------------- the ensemble


def _fold_models(folder: Path):
    """The fold models of a model folder (``model.json``'s ``folds``, relative to it)."""
    from mtnet.factors import Encoding
    from mtnet.model.mtnet.api import load

    meta = json.loads((folder / MODEL_JSON).read_text())
    out = []
    for rel in meta["folds"]:
        fold_dir = (folder / rel).resolve()
        enc_path = fold_dir / ENCODING_JSON
        enc = Encoding.from_dict(json.loads(enc_path.read_text())) if enc_path.exists() else None
        out.append((load(fold_dir), enc))
    return meta, out


def train_model(spec, inputs: dict, outputs: dict, settings: dict, seed: int, threads: int = 1):
    """The fold ensemble: model.json (the folds), oof.tsv, summary.tsv, training_log.tsv."""
    from mtnet.tables import read_tsv, write_tsv

    folder = Path(outputs["model"])
    folder.mkdir(parents=True, exist_ok=True)
    folds = sorted((Path(p) for p in inputs["folds"]), key=lambda p: int(p.name))
    rows, logs, oof, factors = [], [], [], set()
    for fold_dir in folds:
        meta = json.loads((fold_dir / MODEL_JSON).read_text())
        info = meta["info"]
        enc_path = fold_dir / ENCODING_JSON
        if enc_path.exists():
            factors |= {t["column"] for t in json.loads(enc_path.read_text())["terms"]}
        rows.append({"fold": int(fold_dir.name), **{k: info.get(k) for k in SUMMARY_COLUMNS[1:-1]},
                     "clinical_factors": ", ".join(dict.fromkeys(
                         n.split("[")[0] for n in meta["used_factors"]))})
        logs.append(read_tsv(fold_dir / LOG_TSV).assign(fold=int(fold_dir.name)))
        oof.append(read_tsv(fold_dir / HELDOUT_TSV))
    from mtnet.factors import MODEL_FACTORS

    model = {"model": spec.name, "family": "mtnet", "ensemble": "mean of the fold models' risks",
             "folds": [str(Path("..") / "folds" / p.name) for p in folds],
             "factors": [f for f in MODEL_FACTORS if f in factors],
             "settings": _settings(settings)[0], "seed": int(seed)}
    (folder / MODEL_JSON).write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
    write_tsv(pd.concat(oof, ignore_index=True).sort_values(["center", "patient_id"]),
              folder / "oof.tsv")
    write_tsv(pd.DataFrame(rows, columns=SUMMARY_COLUMNS), outputs["summary"])
    log_table = pd.concat(logs, ignore_index=True)
    write_tsv(log_table[["fold"] + [c for c in log_table.columns if c != "fold"]], outputs["log"])
    stepwise = folds[0] / STEPWISE_TSV
    if stepwise.exists():  # Model-Logistic-CR-DR: each fold's screen, beside the model
        write_tsv(pd.concat([read_tsv(f / STEPWISE_TSV).assign(fold=int(f.name)) for f in folds],
                            ignore_index=True), folder / STEPWISE_TSV)
    return model


def predict_ensemble_center(folder, patients: pd.DataFrame, roi_dir, device="cpu"):
    """(risk, H-score) of ``patients`` (one center's clinical rows): the fold models' means."""
    from mtnet.model.mtnet.api import predict_mtnet

    meta, models = _fold_models(Path(folder))
    center = patients["center"].iloc[0]
    risks, hs, by_view = [], [], {}  # the folds share a grid and view: crops read once
    for model, enc in models:
        crops = None
        if model.config.image:
            key = (model.grid, model.view)
            if key not in by_view:
                by_view[key] = _crops(patients, {center: Path(roi_dir)}, *key)
            crops = by_view[key]
        clinical = enc.standardized(patients, center=center) if enc is not None else None
        r, h = predict_mtnet(model, crops, clinical, device=device)
        risks.append(r)
        hs.append(h)
    return np.mean(risks, axis=0), np.mean(hs, axis=0)


def predict_model(spec, inputs: dict, output, center: str, role: str, settings: dict,
                  threads: int = 1):
    """The registry's entry point: the ensemble's risks and H-scores of one center."""
    from mtnet.model.predictions import write_center_predictions
    from mtnet.tables import read_clinical

    _, device = _settings(settings)
    patients = read_clinical(inputs["clinical"]).assign(center=center)
    risk, h = predict_ensemble_center(inputs["model"], patients, inputs.get("roi"), device=device)
    folder = Path(inputs["model"])
    return write_center_predictions(patients, spec.name, risk, center, role, output,
                                    oof_path=folder / "oof.tsv", h_score=h)
