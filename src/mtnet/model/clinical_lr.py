"""Model-Clinical-LR: the reference clinical model, fitted as a biostatistician would.

A multivariable logistic regression on the canonical clinical and radiological factors,
encoded as the paper tabulates them (:class:`mtnet.factors.Encoding`: reference level
first; AFP and lesion number by the paper's groups; levels absent from training pooled with
the nearest level; NA imputed with the training median or mode, logged), fitted on the
pooled training centers. With about 35 events for 24 parameters (the paper's cohort) an
unpenalised fit overfits or separates, so the fit is penalised (Steyerberg, Clinical
Prediction Models, 2nd ed., ch. 13):

- predictors are standardised (training mean and SD) and the coefficients, not the
  intercept, carry an L2 penalty: maximise log L - lambda/2 * sum(beta^2) (scikit-learn's
  logistic regression, C = 1/lambda, Newton-Cholesky);
- lambda is chosen on a grid (1e-2 ... 1e3, 21 values) by the largest cross-validated
  log-likelihood over inner folds stratified by center and outcome (k = min(5, events,
  non-events); seeded from the config's seed); ties go to the larger penalty;
- 95% CIs of the odds ratios are bootstrap percentiles (``clinical_lr.bootstrap``
  resamples, stratified by center and outcome, lambda fixed at its chosen value, seeded);
  penalised fits have no valid Wald p-values, so p is NA with the reason in ``note``; the
  resampled coefficients are kept (``bootstrap_coefficients``), and a new patient's risk
  gets the same percentile interval (:func:`risk_interval`: the risks of the resampled
  fits, encoding and lambda fixed);
- coefficients are reported per unit of each factor.

Out-of-fold risks for the training centers (split ``oof``) come from the workflow's split
file: for each fold, the whole procedure (encoding, lambda's inner cross-validation, fit)
is repeated on the other folds and the fold is predicted. The fit on all training centers
gives the apparent (``apparent``) and external (``external``) risks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mtnet.errors import InputError
from mtnet.factors import Encoding
from mtnet.model.predictions import OOF_COLUMNS, ROLE_SPLIT, oof_frame, write_center_predictions
from mtnet.model.splits import fold_of, read_folds, stratified_folds
from mtnet.tables import read_clinical, read_clinical_tables, write_tsv

log = logging.getLogger(__name__)

MODEL_NAME = "Model-Clinical-LR"
PENALTY_GRID = np.logspace(-2, 3, 21)
COEFFICIENT_COLUMNS = ["term", "coef", "OR", "ci_low", "ci_high", "p", "note"]


# ----------------------------------------------------------------------------- fitting


def _ridge(y, xs, penalty: float) -> np.ndarray:
    """Maximise log L - penalty/2 * |beta|^2 (intercept free): (intercept, beta...)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0 / penalty, solver="newton-cholesky", tol=1e-10, max_iter=200)
    clf.fit(xs, y)
    return np.concatenate([clf.intercept_, clf.coef_.ravel()])


def choose_penalty(y, xs, strata, seed: int, grid=PENALTY_GRID) -> tuple[float, list[dict]]:
    """The penalty of ``grid`` with the largest cross-validated log-likelihood over inner
    folds stratified by ``strata`` and outcome; ties go to the larger penalty."""
    k = int(min(5, y.sum(), len(y) - y.sum()))
    if k < 2:
        raise InputError(f"{int(y.sum())} event(s) in {len(y)} patients: too few to choose the "
                         "penalty by cross-validation", column="mvi")
    fold = stratified_folds(y, strata, k, seed, MODEL_NAME, "penalty")
    path = []
    for penalty in grid:
        loglik = 0.0
        for f in range(k):
            test = fold == f
            beta = _ridge(y[~test], xs[~test], penalty)
            eta = beta[0] + xs[test] @ beta[1:]
            loglik += float(np.sum(y[test] * eta - np.logaddexp(0.0, eta)))
        path.append({"penalty": float(penalty), "cv_loglik": loglik})
    best = max(path, key=lambda r: (round(r["cv_loglik"], 9), r["penalty"]))
    return best["penalty"], path


def _outcome(train: pd.DataFrame, where) -> tuple[pd.DataFrame, np.ndarray]:
    y = pd.to_numeric(train["mvi"], errors="coerce") if "mvi" in train else None
    if y is None or y.isna().all():
        raise InputError("no mvi outcome in the training tables", column="mvi", path=where)
    keep = y.notna()
    if (~keep).any():
        log.warning("%d training patient(s) without mvi are left out of the fit", int((~keep).sum()))
    train, y = train[keep].reset_index(drop=True), y[keep].to_numpy(float)
    if not np.isin(y, (0, 1)).all():
        raise InputError("mvi must be 0/1", column="mvi", path=where)
    if y.sum() == 0 or y.sum() == len(y):
        raise InputError(f"the training tables have {int(y.sum())} MVI event(s) in {len(y)} "
                         f"patients: one class only, no model can be fitted", column="mvi")
    return train, y


def _bootstrap(y, xs, strata, penalty: float, n: int, seed: int) -> np.ndarray:
    """(n, 1 + terms) standardised coefficients refitted on resamples drawn with replacement
    within each (stratum, outcome) cell."""
    gen = np.random.default_rng(seed)
    cells = [np.flatnonzero((strata == s) & (y == o)) for s in sorted(set(strata), key=str)
             for o in (0, 1)]
    cells = [c for c in cells if len(c)]
    out = np.empty((n, xs.shape[1] + 1))
    for b in range(n):
        idx = np.concatenate([gen.choice(c, size=len(c), replace=True) for c in cells])
        out[b] = _ridge(y[idx], xs[idx], penalty)
    return out


def fit_frame(train: pd.DataFrame, seed: int, bootstrap: int = 0, where=None) -> dict:
    """Fit on one training frame (canonical columns and ``center``); the model as a dict."""
    from mtnet.seeds import derive_seed

    train, y = _outcome(train, where)
    encoding = Encoding.fit(train)
    for d in encoding.dropped:
        log.info("Model-Clinical-LR: dropped %s: %s", d["column"], d["reason"])
    if not encoding.terms:
        raise InputError(
            "no clinical factor is usable in the training tables (every one is absent, entirely "
            "NA or constant): Model-Clinical-LR cannot be fitted", path=where,
            fix="map the clinical columns at ingestion, or drop Model-Clinical-LR from models")
    x = encoding.matrix(train)
    mean, sd = np.asarray(encoding.mean), np.asarray(encoding.sd)
    xs = (x - mean) / sd
    strata = train["center"].astype(str).to_numpy() if "center" in train else np.zeros(len(y), str)
    penalty, cv_path = choose_penalty(y, xs, strata, seed)
    k = x.shape[1]
    # per standardised unit -> per unit: beta_unit = A beta_std
    a = np.eye(k + 1)
    a[0, 1:] = -mean / sd
    a[1:, 1:] = np.diag(1 / sd)
    params = a @ _ridge(y, xs, penalty)
    lo = hi = np.full(k + 1, np.nan)
    draws = None
    if bootstrap:
        draws = _bootstrap(y, xs, strata, penalty, bootstrap, derive_seed(seed, MODEL_NAME, "bootstrap")) @ a.T
        lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
    note = (f"L2-penalised (lambda {penalty:.3g} by cross-validation): 95% CI = bootstrap percentile "
            f"(B = {bootstrap}); no Wald p after penalisation" if bootstrap else
            f"L2-penalised (lambda {penalty:.3g} by cross-validation)")
    coefs = [{"term": name, "coef": float(b), "OR": float(np.exp(b)),
              "ci_low": float(np.exp(lo[i])) if bootstrap else None,
              "ci_high": float(np.exp(hi[i])) if bootstrap else None, "p": None, "note": note}
             for i, (name, b) in enumerate(zip(["(intercept)"] + encoding.names, params))]
    log.info("Model-Clinical-LR: %d patients, %d events, %d terms, lambda %.3g", len(y),
             int(y.sum()), k, penalty)
    return {
        "model": MODEL_NAME,
        "fit": {"method": "L2-penalised logistic regression", "l2_penalty": penalty,
                "penalty_cv": cv_path, "bootstrap": int(bootstrap), "seed": int(seed),
                "n": int(len(y)), "events": int(y.sum())},
        "encoding": encoding.to_dict(),
        "intercept": float(params[0]),
        "coefficients": coefs,
        # per unit, one row per resample: (intercept, terms...)
        "bootstrap_coefficients": None if draws is None else draws.tolist(),
    }


def fit(tables: list, seed: int = 0, bootstrap: int = 0) -> dict:
    """Fit Model-Clinical-LR on the pooled training tables."""
    if not tables:
        raise InputError("no training tables", fix="configure at least one role: train center")
    model = fit_frame(read_clinical_tables(tables), seed, bootstrap, where=tables[0])
    model["fit"]["tables"] = [str(t) for t in tables]
    return model


def oof_risks(train: pd.DataFrame, folds: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Out-of-fold risks of the training patients: each fold predicted by the procedure
    refitted on the other folds (its own encoding and penalty)."""
    from mtnet.seeds import derive_seed

    train = train[pd.to_numeric(train["mvi"], errors="coerce").notna()].reset_index(drop=True)
    fold = fold_of(folds, train)
    risk = np.full(len(train), np.nan)
    for f in sorted(set(fold)):
        held = fold == f
        model = fit_frame(train[~held], derive_seed(seed, MODEL_NAME, "fold", int(f)))
        risk[held] = predict_risk(model, train[held])
    return oof_frame(train, fold, risk)


def save(model: dict, folder, summary_path, log_path) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(model, indent=2) + "\n")
    write_tsv(pd.DataFrame(model["coefficients"], columns=COEFFICIENT_COLUMNS), summary_path)
    write_tsv(pd.DataFrame(model["fit"]["penalty_cv"], columns=["penalty", "cv_loglik"]), log_path)


# ----------------------------------------------------------------------------- predicting


def predict_risk(model: dict, df: pd.DataFrame, center=None, path=None) -> np.ndarray:
    """P(MVI) = 1 / (1 + exp(-(b0 + sum b_j x_j))) with per-unit coefficients."""
    x = Encoding.from_dict(model["encoding"]).matrix(df, center=center, path=path)
    beta = np.array([c["coef"] for c in model["coefficients"]])
    return 1.0 / (1.0 + np.exp(-(beta[0] + x @ beta[1:])))


def risk_interval(model_folder, table_path, level: float = 0.95) -> dict:
    """{patient_id: (low, high)}: the percentile interval of each patient's risk over the
    bootstrap fits (none when the model was fitted without a bootstrap)."""
    model = json.loads((Path(model_folder) / "model.json").read_text())
    draws = model.get("bootstrap_coefficients")
    if not draws:
        return {}
    draws = np.asarray(draws, float)
    df = read_clinical(table_path)
    x = Encoding.from_dict(model["encoding"]).matrix(df, path=table_path)
    risks = 1.0 / (1.0 + np.exp(-(draws[:, :1].T + x @ draws[:, 1:].T)))  # (patients, B)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(risks, [tail, 100 - tail], axis=1)
    return {str(p): (float(a), float(b)) for p, a, b in zip(df["patient_id"], lo, hi)}


def predict_table(model_path, table_path, center: str, role: str, out_path, oof_path=None) -> pd.DataFrame:
    """Risks for one center's clinical table in the predictions contract: split ``external``
    for an external center; ``apparent`` and, from ``oof_path``, ``oof`` for a training one."""
    if role not in ROLE_SPLIT:
        raise InputError(f"unknown role {role!r} (train or external)", center=center)
    model = json.loads(Path(model_path).read_text())
    df = read_clinical(table_path)
    risk = predict_risk(model, df, center=center, path=table_path)
    return write_center_predictions(df, MODEL_NAME, risk, center, role, out_path, oof_path)


# ----------------------------------------------------------------------------- registry


def train_model(spec, inputs: dict, outputs: dict, settings: dict, seed: int, threads: int = 1):
    """The registry's entry point: the full fit, its bootstrap CIs and the out-of-fold risks."""
    from mtnet.config import section

    settings = section("clinical_lr", settings)
    tables = list(inputs["clinical"])
    model = fit(tables, seed=seed, bootstrap=settings["bootstrap"])
    oof = oof_risks(read_clinical_tables(tables), read_folds(inputs["splits"]), seed)
    save(model, outputs["model"], outputs["summary"], outputs["log"])
    write_tsv(oof[OOF_COLUMNS], Path(outputs["model"]) / "oof.tsv")
    return model


def predict_model(spec, inputs: dict, output, center: str, role: str, settings: dict,
                  threads: int = 1):
    """The registry's entry point: risks of one center."""
    folder = Path(inputs["model"])
    return predict_table(folder / "model.json", inputs["clinical"], center, role, output,
                         oof_path=folder / "oof.tsv")
