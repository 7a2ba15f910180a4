"""Backward stepwise logistic regression (statsmodels): the conventional factor screen of
paper §3.6, whose kept factors feed Model-Logistic-CR-DR's clinical block.

Rule. Start from every term (column) that varies. Fit the logistic regression; give each
*factor* a p-value: a factor of one term its Wald p (``test="wald"``, the default), a
factor of several terms (the dummies of one categorical variable, e.g. ``bclc[A]``,
``bclc[B]``) the likelihood-ratio test p of dropping all its terms together (chi-squared,
df = its number of terms); with ``test="lr"`` every factor gets the LR test p (SPSS's
"Backward: LR", the paper's wording). Remove the factor with the largest p if it is above
``p_remove`` (ties: the later factor in column order), refit, repeat; stop when every p is
at most ``p_remove`` or no factor is left. ``p_remove`` defaults to 0.10, SPSS's removal
criterion.

Separation (few events): each fit is tried by maximum likelihood (Newton) on standardised
columns first; under (quasi-)separation, non-convergence, a singular information matrix or
a standardised coefficient beyond |10|, that step is fitted instead with an L2 penalty on
the standardised coefficients (intercept free), the penalty chosen once, on the first such
step, by stratified k-fold cross-validated log-likelihood (as Model-Clinical-LR does,
src/mtnet/model/clinical_lr.py); in such a step every factor's p is the *penalised*
likelihood-ratio test (2 x the difference of penalised log-likelihoods, chi-squared; an
approximation, noted in ``steps``). The final table's CIs and p are NA after a penalised
fit, with the reason in ``note``. Nothing raises on separation.

Results are per unit of each input column: OR = exp(coef), 95% Wald CI.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from mtnet.errors import InputError
from mtnet.seeds import derive_seed

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["term", "coef", "OR", "ci_low", "ci_high", "p", "note"]
STEP_COLUMNS = ["step", "removed", "test", "p", "method", "n_terms"]
MAX_ABS_STD_COEF = 10.0
PENALTY_GRID = np.logspace(-2, 3, 21)
TESTS = ("wald", "lr")
_LEVEL = re.compile(r"^(?P<factor>.+)\[[^\[\]]+\]$")


def factor_of(name: str) -> str:
    """``"bclc[A]"`` -> ``"bclc"``; any other name is its own factor."""
    m = _LEVEL.match(str(name))
    return m.group("factor") if m else str(name)


@dataclass
class StepwiseResult:
    """``kept_factors`` / ``kept_terms`` / ``kept_columns`` (indices into the input
    matrix, in its order); ``table``: the final model (``TABLE_COLUMNS``, intercept
    first); ``steps``: one row per removal (``STEP_COLUMNS``); ``method`` of the final fit;
    ``dropped``: columns left out before the first fit, with the reason."""

    kept_factors: list[str]
    kept_terms: list[str]
    kept_columns: list[int]
    table: pd.DataFrame
    steps: pd.DataFrame
    method: str
    dropped: list[dict] = field(default_factory=list)


@dataclass
class _Fit:
    params: np.ndarray  # standardised scale, intercept first
    cov: np.ndarray | None  # None after a penalised fit
    objective: float  # log-likelihood, minus the penalty after a penalised fit
    method: str
    reason: str = ""


def _mle(y, xs) -> tuple[_Fit | None, str]:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    exog = sm.add_constant(xs, has_constant="add") if xs.shape[1] else np.ones((len(y), 1))
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
    if params.size > 1 and np.max(np.abs(params[1:])) > MAX_ABS_STD_COEF:
        return None, f"quasi-separation (a standardised coefficient beyond |{MAX_ABS_STD_COEF:g}|)"
    return _Fit(params, cov, float(res.llf), "maximum likelihood"), ""


def _loglik(y, eta) -> float:
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def _ridge(y, xs, penalty: float) -> _Fit:
    """Maximise log L - penalty/2 |beta|^2 (intercept free): scikit-learn, C = 1/penalty."""
    from sklearn.linear_model import LogisticRegression

    if xs.shape[1] == 0:
        p = y.mean()
        b0 = np.log(p / (1 - p))
        return _Fit(np.array([b0]), None, _loglik(y, np.full(len(y), b0)), "L2-penalised")
    clf = LogisticRegression(C=1.0 / penalty, solver="newton-cholesky", tol=1e-10, max_iter=200)
    clf.fit(xs, y)
    beta = np.concatenate([clf.intercept_, clf.coef_.ravel()])
    eta = beta[0] + xs @ beta[1:]
    return _Fit(beta, None, _loglik(y, eta) - penalty / 2 * float(beta[1:] @ beta[1:]),
                "L2-penalised")


def choose_penalty(y, xs, seed: int) -> float:
    """The grid's L2 penalty with the largest stratified k-fold cross-validated
    log-likelihood (k = min(5, events, non-events)); ties to the larger penalty."""
    from sklearn.model_selection import StratifiedKFold

    k = int(min(5, y.sum(), len(y) - y.sum()))
    if k < 2:
        return 1.0
    folds = list(StratifiedKFold(k, shuffle=True, random_state=derive_seed(seed, "stepwise"))
                 .split(xs, y))
    best = None
    for penalty in PENALTY_GRID:
        cv = 0.0
        for tr, te in folds:
            b = _ridge(y[tr], xs[tr], penalty).params
            cv += _loglik(y[te], b[0] + xs[te] @ b[1:])
        key = (round(cv, 9), penalty)
        best = key if best is None or key > best else best
    return float(best[1])


def backward_stepwise(x, y, names, groups=None, p_remove: float = 0.10, test: str = "wald",
                      seed: int = 0) -> StepwiseResult:
    """Backward elimination on ``x`` (N, F) and 0/1 ``y`` (module docstring for the rule).

    ``names``: the F column names; ``groups``: the factor of each column (default
    :func:`factor_of` of its name). ``seed`` shuffles the cross-validation folds that choose
    the penalty, if one is needed.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    names = [str(n) for n in names]
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[1] != len(names):
        raise InputError(f"stepwise: x {x.shape}, y {y.shape} and {len(names)} names disagree")
    groups = [factor_of(n) for n in names] if groups is None else [str(g) for g in groups]
    if len(groups) != len(names):
        raise InputError("stepwise: one group per column is needed")
    if test not in TESTS:
        raise InputError(f"stepwise: test must be one of {TESTS}, got {test!r}")
    if not np.isfinite(x).all():
        col = names[int(np.flatnonzero(~np.isfinite(x).all(axis=0))[0])]
        raise InputError("stepwise: missing or infinite values", column=col,
                         fix="impute in the encoding before the screen")
    if not np.isin(y, (0, 1)).all() or y.min() == y.max():
        raise InputError(f"stepwise: y must be 0/1 with both classes ({int(y.sum())} events in "
                         f"{len(y)})", column="mvi")
    mean, sd = x.mean(axis=0), x.std(axis=0)
    dropped = [{"term": names[j], "reason": "no variation"} for j in range(len(names)) if sd[j] == 0]
    active = [j for j in range(len(names)) if sd[j] > 0]
    xs_all = np.zeros_like(x)
    xs_all[:, active] = (x[:, active] - mean[active]) / sd[active]
    penalty: float | None = None
    steps: list[dict] = []

    def fit(cols) -> _Fit:
        nonlocal penalty
        xs = xs_all[:, cols]
        result, reason = _mle(y, xs)
        if result is not None:
            return result
        if penalty is None:
            penalty = choose_penalty(y, xs, seed)
            log.warning("stepwise: %s; L2 penalty %.3g chosen by cross-validation", reason, penalty)
        out = _ridge(y, xs, penalty)
        out.reason = reason
        return out

    def lr_stat(full_cols, rest, full: _Fit) -> tuple[float, str]:
        """2 x (objective with - without the factor), both fitted the same way."""
        nonlocal penalty
        if full.method == "maximum likelihood":
            res, _ = _mle(y, xs_all[:, rest])
            if res is not None:
                return 2.0 * (full.objective - res.objective), "maximum likelihood"
            # a nested model of a separable-free fit should fit too; if not, compare penalised
            if penalty is None:
                penalty = choose_penalty(y, xs_all[:, full_cols], seed)
            full = _ridge(y, xs_all[:, full_cols], penalty)
        return 2.0 * (full.objective - _ridge(y, xs_all[:, rest], penalty).objective), "L2-penalised"

    step = 0
    while True:
        active_cols = list(active)
        current = fit(active_cols)
        factors = list(dict.fromkeys(groups[j] for j in active_cols))
        if not factors:
            break
        pvals = {}
        for f in factors:
            members = [i for i, j in enumerate(active_cols) if groups[j] == f]
            if current.cov is not None and test == "wald" and len(members) == 1:
                i = members[0] + 1
                z = current.params[i] / np.sqrt(current.cov[i, i])
                pvals[f] = (float(2 * sps.norm.sf(abs(z))), "Wald", current.method)
            else:
                rest = [j for j in active_cols if groups[j] != f]
                stat, how = lr_stat(active_cols, rest, current)
                stat = max(0.0, stat)
                label = "LR" if how == "maximum likelihood" else "penalised LR"
                pvals[f] = (float(sps.chi2.sf(stat, len(members))), label, how)
        worst = max(factors, key=lambda f: (pvals[f][0], factors.index(f)))
        p, label, how = pvals[worst]
        if p <= p_remove:
            break
        step += 1
        n_terms = sum(groups[j] == worst for j in active)
        active = [j for j in active if groups[j] != worst]
        steps.append({"step": step, "removed": worst, "test": label, "p": p, "method": how,
                      "n_terms": n_terms})
        log.info("stepwise step %d: removed %s (%s p = %.3g)", step, worst, label, p)

    table = _table(current, [names[j] for j in active], mean[active], sd[active])
    kept_terms = [names[j] for j in active]
    return StepwiseResult(
        kept_factors=list(dict.fromkeys(groups[j] for j in active)), kept_terms=kept_terms,
        kept_columns=list(active), table=table,
        steps=pd.DataFrame(steps, columns=STEP_COLUMNS), method=current.method,
        dropped=dropped,
    )


def _table(fit: _Fit, terms: list[str], mean, sd) -> pd.DataFrame:
    """Per-unit coefficients: beta_j = b_j / sd_j, intercept b_0 - sum b_j mean_j / sd_j."""
    k = len(terms)
    a = np.eye(k + 1)
    if k:
        a[0, 1:] = -mean / sd
        a[1:, 1:] = np.diag(1 / sd)
    params = a @ fit.params
    if fit.cov is not None:
        se = np.sqrt(np.diag(a @ fit.cov @ a.T))
        note = ""
    else:
        se = np.full(k + 1, np.nan)
        note = f"penalised fit ({fit.reason}): Wald CI and p not valid"
    q = sps.norm.ppf(0.975)
    rows = []
    for name, b, s in zip(["(intercept)", *terms], params, se):
        ok = np.isfinite(s)
        rows.append({"term": name, "coef": float(b), "OR": float(np.exp(b)),
                     "ci_low": float(np.exp(b - q * s)) if ok else np.nan,
                     "ci_high": float(np.exp(b + q * s)) if ok else np.nan,
                     "p": float(2 * sps.norm.sf(abs(b / s))) if ok else np.nan, "note": note})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
