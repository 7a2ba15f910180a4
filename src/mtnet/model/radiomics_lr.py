"""Model-Radiomics and Model-Radiomics-CR: handcrafted radiomics (mtnet.features) and a
penalised logistic regression, the baseline beyond the paper (docs/design.md section 3).

Model-Radiomics uses the pyradiomics features of the target lesion and the peritumoral
ring; Model-Radiomics-CR the same plus the encoded clinical and radiological factors (a
float matrix with names, from mtnet.factors; this module does not encode them). Every step
is fitted on the training rows only and stored in the model, in this order:

1. missing values: a feature NA in more than ``max_missing_fraction`` of the training rows
   is dropped; other NAs are imputed with the training median (at prediction too);
2. variance filter: a feature constant in training, or whose most frequent value holds
   more than ``max_mode_fraction`` of the training rows, is dropped;
3. harmonisation (``harmonize``): ``none``, or ``combat`` (mtnet.features.combat: fitted on
   the training centers with the center as batch; a new center's batch effect estimated
   from its own rows, without labels);
4. correlation filter: of features with |r| > ``correlation_threshold`` (Spearman by
   default) in training, one is kept by a fixed rule: features are visited by increasing
   mean |r| with all the others (ties by name), and one is kept unless it exceeds the
   threshold with a feature already kept (caret's findCorrelation keeps the same kind of
   feature); the result does not depend on the column order;
5. (Model-Radiomics-CR) the clinical columns are appended (a column constant in training is
   dropped; no imputation here: the encoding imputes);
6. standardisation with the training mean and SD (ddof 0);
7. logistic regression with an L1 penalty (the lasso; scikit-learn's liblinear solver),
   minimising ||w||_1 + C * sum of log-losses. liblinear penalises the intercept as a
   feature of constant value ``intercept_scaling`` = 10^4, so its penalty is 10^-4 |b0|:
   the intercept of an empty model is logit(event rate) to 4 decimals. (saga, the solver
   that also does elastic net, left the intercept of an empty model at -0.78 instead of
   -1.72 on a 112-patient test set even at tol 1e-10, so it is not used.) C is
   chosen from a grid by stratified k-fold cross-validation on the training rows
   (k = min(inner_folds, events, non-events), folds shuffled with a seed derived from the
   config's seed), scored by ``selection``: ``auc`` (default: the AUC of the pooled inner
   out-of-fold predictions; on the demo's 14 events the log-loss chose the empty model) or
   ``log_loss``; ties go to the smaller C (the stronger penalty). The default grid is
   data-driven like glmnet's: from the C at which every coefficient is zero up
   ``C_ratio`` times that, ``n_C`` values log-spaced. Steps 1-4 are not refitted inside the
   inner folds (they use no outcome); the scaling is.

:func:`fit_predict_oof` refits the whole chain on k-1 folds of a split file and predicts
the held-out fold, so no step sees the held-out patients' labels (and none but a new
center's ComBat batch estimate sees their features).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mtnet.errors import InputError
from mtnet.seeds import derive_seed
from mtnet.tables import write_tsv

log = logging.getLogger(__name__)

MODEL_RADIOMICS = "Model-Radiomics"
MODEL_RADIOMICS_CR = "Model-Radiomics-CR"
ID_COLUMNS = ("patient_id", "center")
INTERCEPT_SCALING = 1e4


def model_name(clinical) -> str:
    return MODEL_RADIOMICS if clinical is None else MODEL_RADIOMICS_CR


def _settings(settings: dict | None) -> dict:
    """The pipeline's settings with the schema's defaults (config ``features.model``, plus
    ``harmonize`` from ``features``)."""
    from mtnet.config import ConfigError, section

    s = dict(settings or {})
    harmonize = s.pop("harmonize", None)
    try:
        full = section("features", {"model": s, **({"harmonize": harmonize} if harmonize else {})})
    except ConfigError as err:
        raise InputError(str(err)) from None
    return {**full["model"], "harmonize": full["harmonize"]}


# ----------------------------------------------------------------------------- inputs


def feature_columns(features: pd.DataFrame) -> list[str]:
    """The feature columns of a wide table (everything but patient_id and center)."""
    return [c for c in features.columns if c not in ID_COLUMNS]


def _check_features(features: pd.DataFrame, columns=None) -> pd.DataFrame:
    if "center" not in features.columns:
        raise InputError("the features table has no center column", column="center",
                         fix="build it with mtnet.features.wide_features")
    columns = feature_columns(features) if columns is None else list(columns)
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise InputError(f"{len(missing)} feature(s) of the model are absent (first: {missing[0]})",
                         column=missing[0],
                         fix="extract every center with the same radiomics parameters file")
    x = features[columns]
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(x[c])]
    if bad:
        raise InputError("feature column is not numeric", column=bad[0],
                         fix="check the radiomics table (NA must be written NA)")
    return x.astype(float)


def _check_y(y, n: int) -> np.ndarray:
    y = np.asarray(y, float).ravel()
    if len(y) != n:
        raise InputError(f"{len(y)} outcomes for {n} patients", column="mvi")
    if not np.isin(y, (0.0, 1.0)).all():
        raise InputError("mvi must be 0/1 for every training patient (drop those without it)",
                         column="mvi")
    if y.sum() < 2 or len(y) - y.sum() < 2:
        raise InputError(f"{int(y.sum())} MVI event(s) in {len(y)} training patients: too few to "
                         f"fit and tune the model", column="mvi")
    return y


def _check_clinical(clinical, names, n: int) -> tuple[np.ndarray, list[str]]:
    x = np.asarray(clinical, float)
    if x.ndim != 2 or x.shape[0] != n:
        raise InputError(f"clinical matrix {x.shape} does not have one row per patient ({n})")
    names = list(names) if names is not None else [f"clinical_{i}" for i in range(x.shape[1])]
    if len(names) != x.shape[1]:
        raise InputError(f"{len(names)} clinical names for {x.shape[1]} columns")
    if not np.isfinite(x).all():
        j = int(np.flatnonzero(~np.isfinite(x).all(axis=0))[0])
        raise InputError("clinical matrix has missing values", column=names[j],
                         fix="encode with mtnet.factors.Encoding, which imputes")
    return x, names


# ----------------------------------------------------------------------------- filters


def missing_filter(x: pd.DataFrame, max_fraction: float) -> tuple[list[str], list[dict]]:
    """Features NA in at most ``max_fraction`` of the rows; the others with the reason."""
    frac = x.isna().mean(axis=0)
    kept = [c for c in x.columns if frac[c] <= max_fraction]
    dropped = [{"feature": c, "step": "missing",
                "reason": f"NA in {frac[c]:.0%} of the training rows"}
               for c in x.columns if frac[c] > max_fraction]
    return kept, dropped


def variance_filter(x: np.ndarray, names, max_mode_fraction: float) -> tuple[list[str], list[dict]]:
    """Drop features constant in ``x`` (range within 1e-12 of their scale) or whose most
    frequent value holds more than ``max_mode_fraction`` of the rows."""
    kept, dropped = [], []
    for j, name in enumerate(names):
        v = x[:, j]
        scale = 1.0 + float(np.max(np.abs(v)))
        if np.ptp(v) <= 1e-12 * scale:
            dropped.append({"feature": name, "step": "variance", "reason": "constant in training"})
            continue
        _, counts = np.unique(v, return_counts=True)
        mode = counts.max() / len(v)
        if mode > max_mode_fraction:
            dropped.append({"feature": name, "step": "variance",
                            "reason": f"one value in {mode:.0%} of the training rows"})
            continue
        kept.append(name)
    return kept, dropped


def correlation_matrix(x: np.ndarray, method: str = "spearman") -> np.ndarray:
    """|r| between the columns of ``x`` (Spearman: Pearson on average ranks)."""
    from scipy.stats import rankdata

    if method == "spearman":
        x = rankdata(x, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(x, rowvar=False)
    return np.abs(np.atleast_2d(r))


def correlation_filter(x: np.ndarray, names, threshold: float = 0.9,
                       method: str = "spearman") -> tuple[list[str], list[dict]]:
    """Keep one of each group of features with |r| > ``threshold`` (module docstring, step 4).

    Returns the kept names in their input order and the dropped ones with the feature kept
    in their place. Permuting the columns does not change the result.
    """
    names = list(names)
    p = len(names)
    if p <= 1:
        return names, []
    r = correlation_matrix(x, method)
    r = np.nan_to_num(r, nan=0.0)
    np.fill_diagonal(r, 0.0)
    mean_abs = r.sum(axis=0) / (p - 1)
    # rounded so that the summation order (the column order) cannot break a tie
    order = sorted(range(p), key=lambda j: (round(float(mean_abs[j]), 10), names[j]))
    kept_idx: list[int] = []
    dropped = []
    for j in order:
        if kept_idx:
            rk = r[j, kept_idx]
            k = int(np.argmax(rk))
            if rk[k] > threshold:
                dropped.append({"feature": names[j], "step": "correlation",
                                "reason": f"|r| = {rk[k]:.3f} with {names[kept_idx[k]]}"})
                continue
        kept_idx.append(j)
    kept = [names[j] for j in sorted(kept_idx)]
    return kept, dropped


# ----------------------------------------------------------------------------- fitting


def c_grid(xs: np.ndarray, y: np.ndarray, s: dict) -> np.ndarray:
    """Inverse penalties C to try, increasing (strongest penalty first)."""
    if s["C_grid"] is not None:
        return np.sort(np.asarray(s["C_grid"], float))
    grad = np.abs(xs.T @ (y - y.mean())).max() if xs.shape[1] else 1.0
    c_min = 1.0 / max(grad, 1e-12)
    return c_min * np.logspace(0.0, np.log10(float(s["C_ratio"])), int(s["n_C"]))


def _logistic(s: dict, c: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=float(c), l1_ratio=1.0, solver="liblinear",
                              intercept_scaling=INTERCEPT_SCALING, max_iter=int(s["max_iter"]),
                              tol=float(s["tol"]), random_state=seed)


def choose_c(xs: np.ndarray, y: np.ndarray, s: dict, seed: int, name: str) -> tuple[float, list[dict]]:
    """C of the grid with the best stratified k-fold cross-validated ``selection`` score:
    ``auc`` (the AUC of the pooled inner out-of-fold linear predictors; ties: the smaller C)
    or ``log_loss`` (mean held-out log-loss). Each inner training part is standardised with
    its own mean and SD before the fit. Both scores are kept in the path.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    grid = c_grid(xs, y, s)
    if len(grid) == 1:
        return float(grid[0]), []
    k = int(min(s["inner_folds"], y.sum(), len(y) - y.sum()))
    cv = StratifiedKFold(k, shuffle=True, random_state=derive_seed(seed, name, "inner-cv"))
    eta = np.zeros((len(grid), len(y)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in cv.split(xs, y):
            mean, sd = xs[train].mean(axis=0), xs[train].std(axis=0)
            sd[sd == 0] = 1.0
            a, b = (xs[train] - mean) / sd, (xs[test] - mean) / sd
            for i, c in enumerate(grid):
                clf = _logistic(s, c, derive_seed(seed, name, "liblinear")).fit(a, y[train])
                eta[i, test] = clf.intercept_[0] + b @ clf.coef_.ravel()
    loss = np.mean(np.logaddexp(0.0, eta) - y * eta, axis=1)
    # an empty model predicts one value: AUC 0.5
    auc = np.array([roc_auc_score(y, e) if np.ptp(e) > 0 else 0.5 for e in eta])
    path = [{"C": float(c), "cv_auc": float(u), "cv_log_loss": float(v)}
            for c, u, v in zip(grid, auc, loss)]
    score = auc if s["selection"] == "auc" else -loss
    best = int(np.flatnonzero(score == score.max())[0])
    return float(grid[best]), path


def fit(features: pd.DataFrame, y, clinical=None, clinical_names=None,
        settings: dict | None = None, seed: int = 0) -> dict:
    """Fit Model-Radiomics (``clinical`` None) or Model-Radiomics-CR on the training rows.

    ``features``: wide table (patient_id, center, one column per feature; see
    mtnet.features.wide_features); ``y``: MVI 0/1 per row; ``clinical``: float matrix (one
    row per patient, same order) with ``clinical_names``. Returns a JSON-able dict.
    """
    from sklearn.exceptions import ConvergenceWarning

    s = _settings(settings)
    name = model_name(clinical)
    x_df = _check_features(features)
    n = len(x_df)
    y = _check_y(y, n)
    centers = features["center"].astype(str).to_numpy()
    dropped: list[dict] = []

    kept, d = missing_filter(x_df, float(s["max_missing_fraction"]))
    dropped += d
    impute = x_df[kept].median(axis=0)
    x = x_df[kept].fillna(impute).to_numpy(float)
    kept, d = variance_filter(x, kept, float(s["max_mode_fraction"]))
    dropped += d
    x = x_df[kept].fillna(impute[kept]).to_numpy(float)

    combat = None
    if s["harmonize"] == "combat" and kept:
        from mtnet.features.combat import ComBat

        combat = ComBat.fit(x, centers, kept, eb=bool(s["combat_eb"]))
        x = combat.transform(x, centers)
    selected_idx = {f: i for i, f in enumerate(kept)}
    kept_corr, d = correlation_filter(x, kept, float(s["correlation_threshold"]),
                                      s["correlation_method"])
    dropped += d
    xr = x[:, [selected_idx[f] for f in kept_corr]]

    terms = [{"term": f, "kind": "radiomics"} for f in kept_corr]
    blocks = [xr]
    cnames = None
    if clinical is not None:
        xc, cnames = _check_clinical(clinical, clinical_names, n)
        keep_c = [j for j in range(xc.shape[1]) if np.ptp(xc[:, j]) > 0]
        dropped += [{"feature": cnames[j], "step": "variance", "reason": "constant in training"}
                    for j in range(xc.shape[1]) if j not in keep_c]
        terms += [{"term": cnames[j], "kind": "clinical"} for j in keep_c]
        blocks.append(xc[:, keep_c])
    xm = np.hstack(blocks) if blocks else np.empty((n, 0))
    mean, sd = xm.mean(axis=0), xm.std(axis=0)
    xs = (xm - mean) / sd

    if xs.shape[1] == 0:
        log.warning("%s: no feature left after the filters; the model is the event rate", name)
        c, path, coef = float("nan"), [], np.zeros(0)
        intercept = float(np.log(y.mean() / (1 - y.mean())))
    else:
        c, path = choose_c(xs, y, s, seed, name)
        clf = _logistic(s, c, derive_seed(seed, name, "liblinear"))
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                clf.fit(xs, y.astype(int))
            except ConvergenceWarning:
                raise InputError(f"{name}: the penalised fit did not converge in "
                                 f"{s['max_iter']} iterations at C = {c:.4g}",
                                 fix="raise max_iter or narrow the C grid") from None
        coef, intercept = clf.coef_.ravel().astype(float), float(clf.intercept_[0])
    for t, b, m, sdv in zip(terms, coef, mean, sd):
        t.update(coef_per_sd=float(b), mean=float(m), sd=float(sdv))
    n_sel = int(np.sum(coef != 0))
    log.info("%s: %d patients, %d events, %d of %d features after the filters, %d selected "
             "(C = %.4g)", name, n, int(y.sum()), len(kept_corr), x_df.shape[1], n_sel, c)
    return {
        "model": name,
        "settings": {k: (list(map(float, v)) if k == "C_grid" and v is not None else v)
                     for k, v in s.items()},
        "seed": int(seed),
        "n": n,
        "events": int(y.sum()),
        "centers": sorted(set(centers)),
        "input_features": list(x_df.columns),
        "clinical_names": cnames,
        "impute": {f: float(impute[f]) for f in impute.index if f in selected_idx},
        "harmonized_features": kept,
        "combat": combat.to_dict() if combat is not None else None,
        "dropped": dropped,
        "C": c,
        "C_path": path,
        "intercept": intercept,
        "terms": terms,
    }


# ----------------------------------------------------------------------------- predicting


def linear_predictor(model: dict, features: pd.DataFrame, clinical=None,
                     clinical_names=None) -> np.ndarray:
    """b0 + sum b_j z_j on the model's harmonised, standardised terms."""
    kept = model["harmonized_features"]
    x = _check_features(features, kept)
    impute = pd.Series(model["impute"], dtype=float)
    x = x.fillna(impute[kept] if kept else impute).to_numpy(float)
    if model["combat"] is not None:
        from mtnet.features.combat import ComBat

        x = ComBat.from_dict(model["combat"]).transform(x, features["center"].astype(str))
    col = {f: i for i, f in enumerate(kept)}
    n = len(features)
    blocks = []
    terms = model["terms"]
    rad = [t["term"] for t in terms if t["kind"] == "radiomics"]
    blocks.append(x[:, [col[f] for f in rad]] if rad else np.empty((n, 0)))
    clin = [t for t in terms if t["kind"] == "clinical"]
    if model["model"] == MODEL_RADIOMICS_CR:
        if clinical is None:
            raise InputError(f"{model['model']} needs the clinical matrix to predict")
        xc, names = _check_clinical(clinical, clinical_names or model["clinical_names"], n)
        idx = {nm: j for j, nm in enumerate(names)}
        missing = [t["term"] for t in clin if t["term"] not in idx]
        if missing:
            raise InputError("clinical matrix lacks a term of the model", column=missing[0],
                             fix="encode with the encoding fitted on the training centers")
        blocks.append(xc[:, [idx[t["term"]] for t in clin]])
    xm = np.hstack(blocks)
    mean = np.array([t["mean"] for t in terms], float)
    sd = np.array([t["sd"] for t in terms], float)
    beta = np.array([t["coef_per_sd"] for t in terms], float)
    return model["intercept"] + ((xm - mean) / sd) @ beta if len(terms) else \
        np.full(n, model["intercept"])


def predict(model: dict, features: pd.DataFrame, clinical=None, clinical_names=None) -> np.ndarray:
    """P(MVI) per row of ``features`` (and of ``clinical`` for Model-Radiomics-CR, whose
    columns are those of the fit unless ``clinical_names`` says otherwise). A center the
    model was not fitted on is harmonised from its own rows: pass the whole center."""
    eta = linear_predictor(model, features, clinical, clinical_names)
    return 1.0 / (1.0 + np.exp(-eta))


# ----------------------------------------------------------------------------- saving


def save(model: dict, folder) -> dict:
    """Write ``model.json``, ``coefficients.tsv`` (the intercept and every term that entered
    the regression: term, kind, coef_per_sd, mean, sd, selected) and ``features.tsv`` (every
    input feature: status kept | dropped, step, reason) into ``folder``; their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f for k, f in
             (("model", "model.json"), ("coefficients", "coefficients.tsv"),
              ("features", "features.tsv"))}
    paths["model"].write_text(json.dumps(model, indent=1) + "\n")
    rows = [{"term": "(intercept)", "kind": "intercept", "coef_per_sd": model["intercept"],
             "mean": np.nan, "sd": np.nan, "selected": 1}]
    rows += [{"term": t["term"], "kind": t["kind"], "coef_per_sd": t["coef_per_sd"],
              "mean": t["mean"], "sd": t["sd"], "selected": int(t["coef_per_sd"] != 0)}
             for t in model["terms"]]
    write_tsv(pd.DataFrame(rows), paths["coefficients"])
    fate = {d["feature"]: d for d in model["dropped"]}
    entered = {t["term"] for t in model["terms"]}
    rows = []
    for f in model["input_features"] + list(model.get("clinical_names") or []):
        if f in entered:
            rows.append({"feature": f, "status": "kept", "step": "", "reason": ""})
        elif f in fate:
            rows.append({"feature": f, "status": "dropped", "step": fate[f]["step"],
                         "reason": fate[f]["reason"]})
    write_tsv(pd.DataFrame(rows, columns=["feature", "status", "step", "reason"]), paths["features"])
    return paths


def load(folder) -> dict:
    path = Path(folder) / "model.json"
    if not path.exists():
        raise InputError("radiomics model not found", path=path, fix="run the training rule")
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------- out of fold


def fit_predict_oof(features: pd.DataFrame, clinical, y, folds: pd.DataFrame, *,
                    clinical_names=None, settings: dict | None = None,
                    seed: int = 0) -> pd.DataFrame:
    """Out-of-fold risks of the training patients from one split file.

    ``folds``: center, patient_id, fold (every row of ``features`` must have one). For each
    fold the whole chain (imputation, filters, ComBat, correlation filter, scaling, penalty
    choice, fit) is fitted on the other folds and predicts the held-out one. ``clinical``:
    None (Model-Radiomics), a matrix aligned with ``features``, or a callable
    ``(train_index, test_index) -> (train_matrix, test_matrix[, names])`` that fits the
    clinical encoding on the training part only (with the names when they differ by fold).
    Returns patient_id, center, fold, risk in the order of ``features``.
    """
    for column in ("center", "patient_id", "fold"):
        if column not in folds.columns:
            raise InputError("split file lacks a column", column=column,
                             fix="write center, patient_id, fold")
    key = pd.MultiIndex.from_frame(features[["center", "patient_id"]].astype(str))
    fmap = pd.Series(folds["fold"].to_numpy(),
                     index=pd.MultiIndex.from_frame(folds[["center", "patient_id"]].astype(str)))
    if fmap.index.duplicated().any():
        c, p = fmap.index[fmap.index.duplicated()][0]
        raise InputError("patient listed twice in the split file", center=c, patient=p)
    missing = ~key.isin(fmap.index)
    if missing.any():
        c, p = key[missing][0]
        raise InputError("patient has no fold in the split file", center=c, patient=p,
                         fix="write the split file from the same training centers")
    fold = fmap.reindex(key).to_numpy()
    y = np.asarray(y, float).ravel()
    risk = np.full(len(features), np.nan)
    names = clinical_names
    for k in sorted(set(fold), key=str):
        test = np.flatnonzero(fold == k)
        train = np.flatnonzero(fold != k)
        fold_names = names
        if callable(clinical):
            # the encoding refitted on this fold's training part may name other columns
            c_train, c_test, *more = clinical(train, test)
            fold_names = more[0] if more else names
        elif clinical is not None:
            c_all = np.asarray(clinical, float)
            c_train, c_test = c_all[train], c_all[test]
        else:
            c_train = c_test = None
        model = fit(features.iloc[train].reset_index(drop=True), y[train], c_train, fold_names,
                    settings, derive_seed(seed, "oof", k))
        risk[test] = predict(model, features.iloc[test].reset_index(drop=True), c_test)
    return pd.DataFrame({"patient_id": features["patient_id"].to_numpy(),
                         "center": features["center"].to_numpy(), "fold": fold, "risk": risk})


# ----------------------------------------------------------------------------- registry


def _center_of(path) -> str:
    """A features table's center: results/features/{center}/radiomics.tsv."""
    return Path(path).parent.name


def _patients(feature_paths, clinical_paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The wide features and the clinical rows of the same patients, in the same order."""
    from mtnet.features import wide_features
    from mtnet.tables import read_clinical_tables

    wide = wide_features({_center_of(p): p for p in feature_paths})
    clin = read_clinical_tables(clinical_paths)
    both = wide[["center", "patient_id"]].merge(clin, on=["center", "patient_id"], how="left",
                                                indicator=True)
    lost = both[both["_merge"] != "both"]
    if len(lost):
        raise InputError("patient has features but no clinical row", center=lost["center"].iloc[0],
                         patient=lost["patient_id"].iloc[0], fix="re-run the features stage")
    return wide, both.drop(columns="_merge")


def _encoded(spec, train_clin, other=None):
    """Model-Radiomics-CR's clinical block: the factors encoded (fitted on ``train_clin``) and
    standardised; None for Model-Radiomics."""
    if not spec.options.get("clinical"):
        return None, None, None
    from mtnet.factors import Encoding

    enc = Encoding.fit(train_clin)
    rows = [enc.standardized(train_clin)] + ([enc.standardized(other)] if other is not None else [])
    return enc, rows, enc.names


def train_model(spec, inputs: dict, outputs: dict, settings: dict, seed: int, threads: int = 1):
    """The registry's entry point: the fit on the training centers and the out-of-fold risks
    from the split file (every step, the clinical encoding included, refitted per fold)."""
    from mtnet.model.predictions import oof_frame
    from mtnet.model.splits import read_folds

    wide, clin = _patients(inputs["features"], inputs["clinical"])
    y = pd.to_numeric(clin["mvi"], errors="coerce")
    keep = y.notna().to_numpy()
    wide, clin, y = wide[keep].reset_index(drop=True), clin[keep].reset_index(drop=True), y[keep].to_numpy()
    model_settings = dict(settings.get("model") or {}, harmonize=settings.get("harmonize", "combat"))
    enc, rows, names = _encoded(spec, clin)
    model = fit(wide, y, rows[0] if rows else None, names, model_settings, seed)
    if enc is not None:
        model["encoding"] = enc.to_dict()

    def clinical(train_idx, test_idx):
        _, (a, b), fold_names = _encoded(spec, clin.iloc[train_idx], clin.iloc[test_idx])
        return a, b, fold_names

    oof = fit_predict_oof(wide, clinical if enc is not None else None, y, read_folds(inputs["splits"]),
                          clinical_names=names, settings=model_settings, seed=seed)
    folder = Path(outputs["model"])
    paths = save(model, folder)
    write_tsv(oof_frame(oof.assign(mvi=y.astype(int)), oof["fold"], oof["risk"]), folder / "oof.tsv")
    coef = pd.read_csv(paths["coefficients"], sep="\t")
    write_tsv(coef[coef["selected"] == 1], outputs["summary"])
    write_tsv(pd.DataFrame(model["C_path"]), outputs["log"])
    return model


def predict_model(spec, inputs: dict, output, center: str, role: str, settings: dict,
                  threads: int = 1):
    """The registry's entry point: risks of one (whole) center."""
    from mtnet.factors import Encoding
    from mtnet.model.predictions import write_center_predictions

    folder = Path(inputs["model"])
    model = load(folder)
    wide, clin = _patients([inputs["features"]], [inputs["clinical"]])
    clinical = (Encoding.from_dict(model["encoding"]).standardized(clin, center=center)
                if "encoding" in model else None)
    risk = predict(model, wide, clinical)
    return write_center_predictions(clin, model["model"], risk, center, role, output,
                                    oof_path=folder / "oof.tsv")
