"""Model-Clinical-LR: multivariable logistic regression on the canonical clinical and
radiological factors (DESIGN.md section 2), encoded as the paper tabulates them, fitted on
the pooled training centers (statsmodels). The conventional reference model every later
model is compared with.

Encoding (reference level first): age, max_diameter_mm, enhancement_ratio continuous;
sex F vs M; treatment TACE, ablation vs resection; hbv, cirrhosis 1 vs 0; Child-Pugh B vs A;
BCLC A, B vs 0; lesion number 2, 3, >3 vs 1; AFP 25-400, >400 vs <25 ng/mL; the eight
radiological readings 1 vs 0.

Missing data: a factor that is absent or entirely NA in the pooled training tables, or has
no variation there, is dropped (logged, and listed in model.json ``dropped``); a dummy level
absent from training is dropped likewise; remaining NA values are imputed with the training
median (continuous) or most frequent level (categorical), at training and prediction time,
and the counts are logged.

Fit: predictors are standardised (training mean and SD) and the maximum-likelihood fit
(Newton) is tried first. Under (quasi-)separation, non-convergence or a coefficient beyond
|10| per SD (an odds ratio above e^10 per SD), the model is refitted with an L2 penalty
on the standardised coefficients (not the intercept): log-likelihood - lambda/2 * sum beta^2
(scikit-learn, C = 1/lambda), lambda chosen from a grid by stratified k-fold
cross-validated log-likelihood (k = min(5, events, non-events); folds shuffled with a seed
derived from the config's ``seed``), the usual remedy when there are few events per
variable (Steyerberg, Clinical Prediction Models, 2nd ed., ch. 13). Wald CIs and p-values
are not valid after penalisation and are NA then, with the reason in ``note``.
Coefficients are reported per unit of each factor.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from mtnet.errors import InputError
from mtnet.seeds import derive_seed
from mtnet.model import PREDICTION_COLUMNS
from mtnet.stats.factors import RADIOLOGICAL, VARIABLES, tabulated

log = logging.getLogger(__name__)

MODEL_NAME = "Model-Clinical-LR"
CONTINUOUS = ["age", "max_diameter_mm", "enhancement_ratio"]
FACTORS = [
    "age",
    "sex",
    "treatment",
    "hbv",
    "cirrhosis",
    "child_pugh",
    "bclc",
    "max_diameter_mm",
    "lesion_number",
    "afp_ng_ml",
    *RADIOLOGICAL,
    "enhancement_ratio",
]
OUTCOME_COLUMNS = ["mvi", "time_to_mvi_days", "death", "os_days"]
MAX_ABS_STD_COEF = 10.0
ROLE_SPLIT = {"train": "apparent", "external": "external"}


# ----------------------------------------------------------------------------- reading


def read_clinical(path) -> pd.DataFrame:
    """A canonical clinical table (TSV, `NA` missing), patient_id and codes as strings."""
    path = Path(path)
    if not path.exists():
        raise InputError("clinical table not found", path=path)
    df = pd.read_csv(
        path,
        sep="\t",
        dtype={"patient_id": str, "center": str},
        na_values=["NA"],
        keep_default_na=True,
    )
    if "patient_id" not in df:
        raise InputError("no patient_id column", path=path, fix="write the canonical columns")
    if df["patient_id"].duplicated().any():
        dup = df.loc[df["patient_id"].duplicated(), "patient_id"].iloc[0]
        raise InputError("duplicated patient_id", patient=dup, path=path)
    return df


# ----------------------------------------------------------------------------- encoding


def build_encoding(train: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """Terms of the design matrix from the training rows, and the dropped factors."""
    terms, dropped = [], []
    for col in FACTORS:
        if col not in train or train[col].isna().all():
            dropped.append(
                {"column": col, "reason": "absent or entirely NA in the training tables"}
            )
            continue
        values = tabulated(train, col)
        observed = values.dropna()
        if observed.nunique() < 2:
            dropped.append(
                {"column": col, "reason": f"no variation in training (only {observed.iloc[0]!r})"}
            )
            continue
        n_missing = int(values.isna().sum())
        if col in CONTINUOUS:
            x = observed.astype(float)
            terms.append(
                {
                    "term": col,
                    "column": col,
                    "kind": "continuous",
                    "impute": float(x.median()),
                    "n_imputed": n_missing,
                }
            )
            continue
        levels = VARIABLES[col]["levels"]
        unknown = sorted(set(observed) - set(levels))
        if unknown:
            raise InputError(
                f"unknown code(s) {unknown} (expected {levels})",
                column=col,
                fix="map the column to the canonical codes at ingestion",
            )
        mode = observed.value_counts().sort_index().idxmax()
        ref = levels[0]
        for level in levels[1:]:
            if not (observed == level).any():
                dropped.append({"column": f"{col}[{level}]", "reason": "level absent in training"})
                continue
            terms.append(
                {
                    "term": f"{col}[{level}]",
                    "column": col,
                    "kind": "dummy",
                    "level": level,
                    "reference": ref,
                    "impute": mode,
                    "n_imputed": n_missing,
                }
            )
    return terms, dropped


def design_matrix(df: pd.DataFrame, terms: list[dict], center=None, path=None) -> np.ndarray:
    """Per-unit design matrix (no intercept), NA imputed with the training value."""
    cols = []
    done = {}
    for t in terms:
        col = t["column"]
        if col not in done:
            if col in df:
                values = tabulated(df, col)
            else:
                values = pd.Series(pd.NA, index=df.index, dtype="object")
            n_na = int(values.isna().sum())
            if n_na:
                log.info(
                    "%s%s: %d missing value(s) imputed with the training value %r",
                    f"center {center}, " if center else "",
                    col,
                    n_na,
                    t["impute"],
                )
            done[col] = values.astype(object).where(values.notna(), t["impute"])
        v = done[col]
        if t["kind"] == "continuous":
            cols.append(pd.to_numeric(v).to_numpy(float))
        else:
            known = set(VARIABLES[col]["levels"])
            bad = v[~v.isin(known)]
            if len(bad):
                pid = df.loc[bad.index[0], "patient_id"] if "patient_id" in df else None
                raise InputError(
                    f"unknown code {bad.iloc[0]!r} (expected {sorted(known)})",
                    center=center,
                    patient=pid,
                    column=col,
                    path=path,
                )
            cols.append((v == t["level"]).to_numpy(float))
    return np.column_stack(cols) if cols else np.empty((len(df), 0))


# ----------------------------------------------------------------------------- fitting


def _mle(y, xs):
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    exog = sm.add_constant(xs, has_constant="add")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            res = sm.Logit(y, exog).fit(method="newton", maxiter=100, disp=0)
        except (PerfectSeparationError, PerfectSeparationWarning, np.linalg.LinAlgError) as err:
            return None, f"maximum likelihood failed ({type(err).__name__}: separation)"
        except Exception as err:  # statsmodels' convergence failures come in several types
            return None, f"maximum likelihood failed ({type(err).__name__})"
    params, cov = np.asarray(res.params), np.asarray(res.cov_params())
    if not res.mle_retvals.get("converged", False):
        return None, "maximum likelihood did not converge"
    if not np.isfinite(cov).all() or np.any(np.diag(cov) <= 0):
        return None, "singular information matrix"
    if np.max(np.abs(params[1:])) > MAX_ABS_STD_COEF:
        return None, f"quasi-separation (a standardised coefficient beyond |{MAX_ABS_STD_COEF:g}|)"
    return (params, cov), None


def _ridge(y, xs, penalty: float = 1.0):
    """Maximise log L - penalty/2 * |beta|^2 (intercept free): scikit-learn's L2 logistic
    regression with C = 1/penalty, Newton-Cholesky solver."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0 / penalty, solver="newton-cholesky", tol=1e-10, max_iter=200)
    clf.fit(xs, y)
    return np.concatenate([clf.intercept_, clf.coef_.ravel()]), float(penalty)


PENALTY_GRID = np.logspace(-2, 3, 21)


def choose_penalty(y, xs, seed: int, grid=PENALTY_GRID) -> tuple[float, list[dict]]:
    """The L2 penalty of the grid with the largest stratified k-fold cross-validated
    log-likelihood (k = min(5, events, non-events)); ties go to the larger penalty."""
    from sklearn.model_selection import StratifiedKFold

    k = int(min(5, y.sum(), len(y) - y.sum()))
    if k < 2:
        return 1.0, []
    folds = list(
        StratifiedKFold(k, shuffle=True, random_state=derive_seed(seed, MODEL_NAME)).split(xs, y)
    )
    path = []
    for penalty in grid:
        loglik = 0.0
        for train_idx, test_idx in folds:
            beta, _ = _ridge(y[train_idx], xs[train_idx], penalty)
            eta = beta[0] + xs[test_idx] @ beta[1:]
            loglik += float(np.sum(y[test_idx] * eta - np.logaddexp(0.0, eta)))
        path.append({"penalty": float(penalty), "cv_loglik": loglik})
    best = max(path, key=lambda r: (round(r["cv_loglik"], 9), r["penalty"]))
    return best["penalty"], path


def fit(tables: list, seed: int = 0) -> dict:
    """Fit Model-Clinical-LR on the pooled training tables; the model as a JSON-able dict.

    ``seed`` shuffles the cross-validation folds that choose the penalty (if one is needed).
    """
    frames = []
    for path in tables:
        df = read_clinical(path)
        df["_source"] = str(path)
        frames.append(df)
    if not frames:
        raise InputError("no training tables", fix="configure at least one role: train center")
    train = pd.concat(frames, ignore_index=True)
    y = pd.to_numeric(train.get("mvi"), errors="coerce")
    if y is None or y.isna().all():
        raise InputError("no mvi outcome in the training tables", column="mvi", path=tables[0])
    keep = y.notna()
    if (~keep).any():
        log.warning(
            "%d training patient(s) without mvi are left out of the fit", int((~keep).sum())
        )
    train, y = train[keep].reset_index(drop=True), y[keep].to_numpy(float)
    if not np.isin(y, (0, 1)).all():
        raise InputError("mvi must be 0/1", column="mvi", path=tables[0])
    if y.sum() == 0 or y.sum() == len(y):
        raise InputError(
            f"the training tables have {int(y.sum())} MVI event(s) in {len(y)} "
            f"patients: one class only, no model can be fitted",
            column="mvi",
        )
    terms, dropped = build_encoding(train)
    for d in dropped:
        log.warning("Model-Clinical-LR: dropped %s: %s", d["column"], d["reason"])
    if not terms:
        raise InputError(
            "no clinical factor is usable in the training tables (every one is "
            "absent, entirely NA or constant): Model-Clinical-LR cannot be fitted",
            path=tables[0],
            fix="map the clinical columns at ingestion, or drop " "Model-Clinical-LR from models",
        )
    x = design_matrix(train, terms)
    mean, sd = x.mean(axis=0), x.std(axis=0, ddof=0)
    xs = (x - mean) / sd
    k = x.shape[1]
    # per-standardised -> per-unit: beta_unit = A beta_std
    a = np.eye(k + 1)
    a[0, 1:] = -mean / sd
    a[1:, 1:] = np.diag(1 / sd)

    result, reason = _mle(y, xs)
    if result is not None:
        params_std, cov_std = result
        cov = a @ cov_std @ a.T
        method, penalty, note, cv_path = "maximum likelihood", 0.0, "", []
        se = np.sqrt(np.diag(cov))
    else:
        penalty, cv_path = choose_penalty(y, xs, seed)
        log.warning(
            "Model-Clinical-LR: %s; refitted with an L2 penalty %.3g chosen by "
            "cross-validated log-likelihood",
            reason,
            penalty,
        )
        params_std, penalty = _ridge(y, xs, penalty)
        method, note = "L2-penalised", f"penalised fit ({reason}): Wald CI and p not valid"
        se = np.full(k + 1, np.nan)
    params = a @ params_std
    q = sps.norm.ppf(0.975)
    names = ["(intercept)"] + [t["term"] for t in terms]
    coefs = []
    for i, name in enumerate(names):
        b, s = float(params[i]), float(se[i])
        coefs.append(
            {
                "term": name,
                "coef": b,
                "OR": float(np.exp(b)),
                "ci_low": float(np.exp(b - q * s)) if np.isfinite(s) else None,
                "ci_high": float(np.exp(b + q * s)) if np.isfinite(s) else None,
                "p": float(2 * sps.norm.sf(abs(b / s))) if np.isfinite(s) else None,
                "note": note,
            }
        )
    for t, m, s in zip(terms, mean, sd):
        t["mean"], t["sd"] = float(m), float(s)
    log.info(
        "Model-Clinical-LR: %s fit, %d patients, %d events, %d terms",
        method,
        len(y),
        int(y.sum()),
        k,
    )
    return {
        "model": MODEL_NAME,
        "fit": {
            "method": method,
            "l2_penalty": penalty,
            "penalty_cv": cv_path,
            "seed": int(seed),
            "reason": reason or "",
            "n": int(len(y)),
            "events": int(y.sum()),
            "tables": [str(t) for t in tables],
        },
        "terms": terms,
        "dropped": dropped,
        "intercept": float(params[0]),
        "coefficients": coefs,
    }


def fit_and_save(tables: list, model_path, coefficients_path, seed: int = 0) -> dict:
    """Fit on the pooled training tables; write model.json and coefficients.tsv
    (term, coef, OR, ci_low, ci_high [of the OR], p, note)."""
    model = fit(list(tables), seed=seed)
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
    Path(model_path).write_text(json.dumps(model, indent=2) + "\n")
    coef = pd.DataFrame(
        model["coefficients"], columns=["term", "coef", "OR", "ci_low", "ci_high", "p", "note"]
    )
    coef.to_csv(coefficients_path, sep="\t", index=False, na_rep="NA")
    return model


# ----------------------------------------------------------------------------- predicting


def predict_risk(model: dict, df: pd.DataFrame, center=None, path=None) -> np.ndarray:
    """P(MVI) = 1 / (1 + exp(-(b0 + sum b_j x_j))) with per-unit coefficients."""
    x = design_matrix(df, model["terms"], center=center, path=path)
    beta = np.array([c["coef"] for c in model["coefficients"]])
    eta = beta[0] + x @ beta[1:]
    return 1.0 / (1.0 + np.exp(-eta))


def predict_table(model_path, table_path, center: str, role: str, out_path) -> pd.DataFrame:
    """Risks for one center's clinical table, written with the prediction columns
    (split = apparent for a training center, external otherwise)."""
    if role not in ROLE_SPLIT:
        raise InputError(f"unknown role {role!r} (train or external)", center=center)
    model = json.loads(Path(model_path).read_text())
    df = read_clinical(table_path)
    risk = predict_risk(model, df, center=center, path=table_path)
    out = pd.DataFrame(
        {"patient_id": df["patient_id"], "center": center, "model": MODEL_NAME, "risk": risk}
    )
    for col in OUTCOME_COLUMNS:
        values = (
            pd.to_numeric(df[col], errors="coerce")
            if col in df
            else pd.Series(np.nan, index=df.index)
        )
        out[col] = values.astype("Int64") if col in ("mvi", "death") else values
    out["split"] = ROLE_SPLIT[role]
    out = out[PREDICTION_COLUMNS]
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(out_path, sep="\t", index=False, na_rep="NA")
    return out
