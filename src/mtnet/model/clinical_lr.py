"""Model-Clinical-LR: multivariable logistic regression on the canonical clinical and
radiological factors (docs/design.md section 2), encoded as the paper tabulates them
(:class:`mtnet.factors.Encoding`), fitted on
the pooled training centers (statsmodels). The conventional reference model every later
model is compared with.

Encoding (reference level first): age, max_diameter_mm, enhancement_ratio continuous;
sex F vs M; treatment TACE, ablation vs resection; hbv, cirrhosis 1 vs 0; Child-Pugh B vs A;
BCLC A, B vs 0; lesion number 2, 3, >3 vs 1; AFP 25-400, >400 vs <25 ng/mL; the eight
radiological readings 1 vs 0.

Missing data: a factor that is absent or entirely NA in the pooled training tables, or has
no variation there, is dropped (logged, and listed in model.json ``encoding.dropped``); a
level absent from training (e.g. Child-Pugh C) gets no dummy and its patients are pooled
with the nearest level (the rule of :mod:`mtnet.factors`, logged per center); remaining NA
values are imputed with the training median (continuous) or most frequent level
(categorical), at training and prediction time, and the counts are logged.

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
from mtnet.factors import Encoding
from mtnet.seeds import derive_seed
from mtnet.tables import prediction_frame, read_clinical, write_predictions, write_tsv

log = logging.getLogger(__name__)

MODEL_NAME = "Model-Clinical-LR"
MAX_ABS_STD_COEF = 10.0
ROLE_SPLIT = {"train": "apparent", "external": "external"}


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
    if not tables:
        raise InputError("no training tables", fix="configure at least one role: train center")
    train = pd.concat([read_clinical(path) for path in tables], ignore_index=True)
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
    encoding = Encoding.fit(train)
    for d in encoding.dropped:
        log.warning("Model-Clinical-LR: dropped %s: %s", d["column"], d["reason"])
    if not encoding.terms:
        raise InputError(
            "no clinical factor is usable in the training tables (every one is "
            "absent, entirely NA or constant): Model-Clinical-LR cannot be fitted",
            path=tables[0],
            fix="map the clinical columns at ingestion, or drop " "Model-Clinical-LR from models",
        )
    x = encoding.matrix(train)
    mean, sd = np.asarray(encoding.mean), np.asarray(encoding.sd)
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
    names = ["(intercept)"] + encoding.names
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
        "encoding": encoding.to_dict(),
        "intercept": float(params[0]),
        "coefficients": coefs,
    }


COEFFICIENT_COLUMNS = ["term", "coef", "OR", "ci_low", "ci_high", "p", "note"]


def fit_and_save(tables: list, model_path, coefficients_path, seed: int = 0, log_path=None) -> dict:
    """Fit on the pooled training tables; write model.json, the coefficients (term, coef, OR,
    ci_low, ci_high [of the OR], p, note) and, with ``log_path``, the penalty's
    cross-validation path (penalty, cv_loglik; empty for a maximum-likelihood fit)."""
    model = fit(list(tables), seed=seed)
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
    Path(model_path).write_text(json.dumps(model, indent=2) + "\n")
    write_tsv(pd.DataFrame(model["coefficients"], columns=COEFFICIENT_COLUMNS), coefficients_path)
    if log_path is not None:
        write_tsv(pd.DataFrame(model["fit"]["penalty_cv"], columns=["penalty", "cv_loglik"]), log_path)
    return model


# ----------------------------------------------------------------------------- predicting


def predict_risk(model: dict, df: pd.DataFrame, center=None, path=None) -> np.ndarray:
    """P(MVI) = 1 / (1 + exp(-(b0 + sum b_j x_j))) with per-unit coefficients."""
    x = Encoding.from_dict(model["encoding"]).matrix(df, center=center, path=path)
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
    out = prediction_frame(df.assign(center=center), MODEL_NAME, risk, ROLE_SPLIT[role])
    write_predictions(out, out_path)
    return out


# ----------------------------------------------------------------------------- registry


def train_model(spec, inputs: dict, outputs: dict, settings: dict, seed: int, threads: int = 1):
    """The registry's entry point: fit on the training centers' clinical tables."""
    folder = Path(outputs["model"])
    folder.mkdir(parents=True, exist_ok=True)
    return fit_and_save(list(inputs["clinical"]), folder / "model.json", outputs["summary"],
                        seed=seed, log_path=outputs["log"])


def predict_model(spec, inputs: dict, output, center: str, role: str, settings: dict,
                  threads: int = 1):
    """The registry's entry point: risks of one center."""
    return predict_table(Path(inputs["model"]) / "model.json", inputs["clinical"], center, role,
                         output)
