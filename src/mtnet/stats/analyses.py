"""Paper section 2.8 for one evaluated center (an external center, or ``pooled_train``: all
training centers pooled), written as the seven TSVs of docs/statistics.md.

Every analysis runs behind a guard: degenerate data (n < 10, one class, equal risks, NaN
risk, a subgroup without events, an empty group) gives a row of NA with the reason in
``reason``, never a crash of the whole center and never a silent number.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd

from mtnet.config import section
from mtnet.errors import InputError
from mtnet.factors import level_order, subgroup_levels
from mtnet.model import registry
from mtnet.seeds import derive_seed
from mtnet.stats import api
from mtnet.tables import read_clinical_tables, read_predictions, write_tsv

log = logging.getLogger(__name__)

MIN_N = 10
ENDPOINTS = {"time_to_mvi": ("time_to_mvi_days", "mvi"), "os": ("os_days", "death")}

COLUMNS = {
    "discrimination": [
        "center",
        "model",
        "split",
        "n",
        "n_events",
        "auc",
        "ci_low",
        "ci_high",
        "threshold",
        "sensitivity",
        "specificity",
        "engine",
        "reason",
    ],
    "delong": [
        "center",
        "model",
        "comparator",
        "n",
        "n_events",
        "auc_model",
        "auc_comparator",
        "z",
        "p",
        "engine",
        "reason",
    ],
    "nri_idi": [
        "center",
        "model",
        "comparator",
        "measure",
        "cutoffs",
        "n",
        "n_events",
        "value",
        "events",
        "nonevents",
        "z",
        "p",
        "engine",
        "reason",
    ],
    "calibration": [
        "center",
        "model",
        "row",
        "bin",
        "n",
        "n_events",
        "mean_predicted",
        "observed",
        "intercept",
        "slope",
        "brier",
        "hl_chi2",
        "hl_df",
        "hl_p",
        "engine",
        "reason",
    ],
    "decision_curve": [
        "center",
        "model",
        "threshold",
        "n",
        "n_events",
        "net_benefit",
        "treat_all",
        "treat_none",
        "engine",
        "reason",
    ],
    "subgroups": [
        "center",
        "model",
        "factor",
        "row",
        "level",
        "n",
        "n_events",
        "auc",
        "ci_low",
        "ci_high",
        "statistic",
        "df",
        "p",
        "engine",
        "reason",
    ],
    "survival": [
        "center",
        "model",
        "split_by",
        "score",
        "threshold",
        "endpoint",
        "row",
        "group",
        "n",
        "events",
        "median_days",
        "logrank_chi2",
        "logrank_p",
        "hr",
        "hr_ci_low",
        "hr_ci_high",
        "hr_p",
        "engine",
        "reason",
    ],
}


# The curves behind the numbers (what the report's figures draw), written beside the seven
# tables when the caller names them in ``outputs``; the seven are the same with or without.
CURVE_COLUMNS = {
    "roc_curves": ["center", "model", "threshold", "fpr", "tpr"],
    "roc_bands": [
        "center",
        "model",
        "specificity",
        "fpr",
        "tpr_low",
        "tpr_median",
        "tpr_high",
        "boot_n",
        "conf_level",
        "seed",
    ],
    # curve = bin (the Hosmer-Lemeshow groups, Wilson CI) | smooth (lowess, one row per
    # patient: mean_predicted = the patient's risk, observed = the smooth)
    "calibration_curves": [
        "center",
        "model",
        "curve",
        "bin",
        "n",
        "n_events",
        "mean_predicted",
        "observed",
        "observed_low",
        "observed_high",
    ],
    "km_curves": [
        "center",
        "model",
        "split_by",
        "endpoint",
        "group",
        "time",
        "n_risk",
        "n_event",
        "n_censor",
        "survival",
        "lower",
        "upper",
    ],
    "km_at_risk": ["center", "model", "split_by", "endpoint", "group", "time", "n_risk"],
}
ROC_BAND_RESAMPLES = 2000


# ------------------------------------------------------------------------------ inputs


def _outcome_rows(df: pd.DataFrame, model: str):
    """y and risk of patients with a known outcome, or a reason why the model can't be used."""
    known = df[df["mvi"].notna()]
    if len(known) < len(df):
        log.warning("%s: %d patient(s) without mvi left out", model, len(df) - len(known))
    n_nan = int(known["risk"].isna().sum())
    if n_nan:
        return known, f"{n_nan} missing (NaN) risk(s) in the predictions of {model}"
    if len(known) < MIN_N:
        return known, f"n = {len(known)} < {MIN_N}"
    return known, None


def _guard(base: dict, func, columns) -> list[dict]:
    """Run an analysis; on degenerate data one NA row with the reason."""
    try:
        rows = func()
    except api.DegenerateInput as err:
        return _na(base, columns, str(err))
    return [{**{c: np.nan for c in columns}, **base, "reason": "", **r} for r in rows]


def _na(base: dict, columns, reason: str) -> list[dict]:
    return [{**{c: np.nan for c in columns}, **base, "reason": reason}]


def _per_model(center, preds, columns, engine, analysis, **fields) -> list[dict]:
    """``analysis(model, known)`` for each model on its patients with a known outcome, its
    rows carrying center, model, ``fields``, n, n_events and engine; one NA row with the
    reason where the model's predictions can't be used or the data are degenerate."""
    rows = []
    for model, df in preds.items():
        known, reason = _outcome_rows(df, model)
        base = {
            "center": center,
            "model": model,
            **{k: f(df) if callable(f) else f for k, f in fields.items()},
            "n": len(known),
            "n_events": int(known["mvi"].sum()),
            "engine": engine,
        }
        if reason:
            rows += _na(base, columns, reason)
        else:
            rows += _guard(base, lambda: analysis(model, known), columns)
    return rows


# ------------------------------------------------------------------------- analyses


def discrimination(center, preds, thresholds, engine, curves=None, seed=None) -> list[dict]:
    """``curves``: a dict that receives ``("roc", model)`` -> the AUC record (with its
    bootstrap band when ``seed`` is given: derive_seed(seed, center, model))."""

    def run(model, known):
        y, p = known["mvi"].to_numpy(float), known["risk"].to_numpy(float)
        band = {}
        if curves is not None and seed is not None:
            band = {"band_seed": derive_seed(seed, center, model), "boot_n": ROC_BAND_RESAMPLES}
        a = api.auc_ci(y, p, engine=engine, **band)
        if curves is not None:
            curves[("roc", model)] = a
        out = {"auc": a.auc, "ci_low": a.ci_low, "ci_high": a.ci_high}
        t = thresholds.get(model)
        if t is not None and np.isfinite(t):
            high = p > t
            out.update(
                threshold=t,
                sensitivity=float(high[y == 1].mean()),
                specificity=float((~high)[y == 0].mean()),
            )
        return [out]

    def split(df):
        return ",".join(sorted(df["split"].astype(str).unique()))

    return _per_model(center, preds, COLUMNS["discrimination"], engine, run, split=split)


def _pairs(preds) -> list[tuple[str, str]]:
    """The paper's comparisons: the primary model (Model-CR-DR) against every other."""
    if registry.PRIMARY_MODEL not in preds:
        return []
    return [(registry.PRIMARY_MODEL, c) for c in registry.comparators(preds)]


def _paired(preds, model, comparator):
    a, b = preds[model], preds[comparator]
    m = a.merge(
        b[["center", "patient_id", "risk"]],
        on=["center", "patient_id"],
        suffixes=("", "_comparator"),
    )
    m = m[m["mvi"].notna()]
    reason = None
    if len(m) < max(len(a), len(b)):
        log.warning(
            "%s vs %s: %d patients in common of %d / %d", model, comparator, len(m), len(a), len(b)
        )
    n_nan = int(m["risk"].isna().sum() + m["risk_comparator"].isna().sum())
    if n_nan:
        reason = f"{n_nan} missing (NaN) risk(s)"
    elif len(m) < MIN_N:
        reason = f"n = {len(m)} < {MIN_N} patients in common"
    return m, reason


def delong(center, preds, engine) -> list[dict]:
    cols = COLUMNS["delong"]
    rows = []
    for model, comp in _pairs(preds):
        m, reason = _paired(preds, model, comp)
        base = {
            "center": center,
            "model": model,
            "comparator": comp,
            "n": len(m),
            "n_events": int(m["mvi"].sum()),
            "engine": engine,
        }
        if reason:
            rows += _na(base, cols, reason)
            continue

        def run(m=m):
            r = api.delong_test(m["mvi"], m["risk"], m["risk_comparator"], engine=engine)
            return [{"auc_model": r.auc1, "auc_comparator": r.auc2, "z": r.z, "p": r.p}]

        rows += _guard(base, run, cols)
    return rows


def nri_idi(center, preds, cutoffs, engine) -> list[dict]:
    cols = COLUMNS["nri_idi"]
    rows = []
    cut_text = ",".join(f"{c:g}" for c in cutoffs)
    for model, comp in _pairs(preds):
        m, reason = _paired(preds, model, comp)
        y = m["mvi"].to_numpy(float)
        common = {
            "center": center,
            "model": model,
            "comparator": comp,
            "n": len(m),
            "n_events": int(y.sum()),
            "engine": engine,
        }
        specs = [("nri_continuous", ""), ("nri_categorical", cut_text), ("idi", "")]
        for measure, cuts in specs:
            base = {**common, "measure": measure, "cutoffs": cuts}
            if reason:
                rows += _na(base, cols, reason)
                continue
            if measure == "nri_categorical" and not cutoffs:
                rows += _na(base, cols, "no stats.nri_cutoffs configured")
                continue

            def run(measure=measure, m=m, y=y):
                old, new = m["risk_comparator"], m["risk"]
                if measure == "idi":
                    r = api.idi(y, old, new, engine=engine)
                    return [
                        {
                            "value": r.idi,
                            "events": r.idi_events,
                            "nonevents": r.idi_nonevents,
                            "z": r.z,
                            "p": r.p,
                        }
                    ]
                r = api.nri(
                    y,
                    old,
                    new,
                    cutoffs=cutoffs if measure == "nri_categorical" else None,
                    engine=engine,
                )
                return [
                    {
                        "value": r.nri,
                        "events": r.nri_events,
                        "nonevents": r.nri_nonevents,
                        "z": r.z,
                        "p": r.p,
                    }
                ]

            rows += _guard(base, run, cols)
    return rows


def calibration(center, preds, bins, engine, curves=None) -> list[dict]:
    """``curves``: a dict that receives ``("calibration", model)`` -> the record."""

    def run(model, known):
        c = api.calibration(known["mvi"], known["risk"], bins=bins, engine=engine)
        if curves is not None:
            curves[("calibration", model)] = c
        out = [
            {
                "intercept": c.intercept,
                "slope": c.slope,
                "brier": c.brier,
                "hl_chi2": c.hl_chi2,
                "hl_df": c.hl_df,
                "hl_p": c.hl_p,
                "reason": (
                    ""
                    if c.hl_df > 0
                    else f"Hosmer-Lemeshow: {len(c.curve)} risk group(s), no degrees of freedom"
                ),
            }
        ]
        for _, b in c.curve.iterrows():
            out.append(
                {
                    "row": "bin",
                    "bin": int(b["bin"]),
                    "n": int(b["n"]),
                    "n_events": int(round(b["observed"] * b["n"])),
                    "mean_predicted": b["mean_predicted"],
                    "observed": b["observed"],
                }
            )
        return out

    return _per_model(center, preds, COLUMNS["calibration"], engine, run, row="summary")


def decision_curve(center, preds, grid, engine) -> list[dict]:
    start, stop, step = grid
    thresholds = np.round(np.arange(start, stop + step / 2, step), 10)
    thresholds = thresholds[(thresholds > 0) & (thresholds < 1)]

    def run(model, known):
        nb = api.net_benefit(known["mvi"], known["risk"], thresholds, engine=engine)
        return nb.to_dict("records")

    return _per_model(center, preds, COLUMNS["decision_curve"], engine, run)


def youden_thresholds(training_preds, engine) -> dict[str, float]:
    """Each model's Youden threshold on the pooled training predictions (NaN if degenerate)."""
    out = {}
    for model, df in training_preds.items():
        known, reason = _outcome_rows(df, model)
        if reason:
            log.warning("%s: no Youden threshold on the training centers: %s", model, reason)
            out[model] = np.nan
            continue
        try:
            out[model] = api.youden_threshold(known["mvi"], known["risk"], engine=engine).threshold
        except api.DegenerateInput as err:
            log.warning("%s: no Youden threshold on the training centers: %s", model, err)
            out[model] = np.nan
    return out


def _with_tables(df: pd.DataFrame, tables) -> pd.DataFrame:
    if not tables:
        return df
    clin = read_clinical_tables(tables)
    keys = ["center", "patient_id"] if "center" in clin else ["patient_id"]
    clin = clin.drop(columns=[c for c in df.columns if c in clin and c not in keys])
    return df.merge(clin, on=keys, how="left")


def subgroups(center, preds, model, tables, engine) -> list[dict]:
    """Paper section 3.3: the best model's AUC per level of each factor, unpaired DeLong
    between every two levels."""
    cols = COLUMNS["subgroups"]
    if model is None:
        return []
    df = _with_tables(preds[model], tables)
    df = df[df["mvi"].notna()]
    rows = []
    for factor, levels in subgroup_levels(df).items():
        data = {}
        for level in level_order(factor, levels.dropna().unique()):
            sub = df[levels == level]
            y, p = sub["mvi"].to_numpy(float), sub["risk"].to_numpy(float)
            base = {
                "center": center,
                "model": model,
                "factor": factor,
                "row": "level",
                "level": level,
                "n": len(sub),
                "n_events": int(y.sum()),
                "engine": engine,
            }
            if len(sub) < MIN_N:
                rows += _na(base, cols, f"n = {len(sub)} < {MIN_N}")
                continue

            def run(y=y, p=p):
                a = api.auc_ci(y, p, engine=engine)
                return [{"auc": a.auc, "ci_low": a.ci_low, "ci_high": a.ci_high}]

            got = _guard(base, run, cols)
            rows += got
            if not got[0]["reason"]:
                data[level] = (y, p)
        all_levels = level_order(factor, levels.dropna().unique())
        for la, lb in itertools.combinations(all_levels, 2):
            base = {
                "center": center,
                "model": model,
                "factor": factor,
                "row": "comparison",
                "level": f"{la} vs {lb}",
                "engine": engine,
            }
            if la not in data or lb not in data:
                rows += _na(base, cols, "AUC not available in both levels")
                continue

            def run(la=la, lb=lb):
                (y1, p1), (y2, p2) = data[la], data[lb]
                r = api.delong_test_unpaired(y1, p1, y2, p2, engine=engine)
                return [
                    {
                        "n": len(y1) + len(y2),
                        "n_events": int(y1.sum() + y2.sum()),
                        "statistic": r.z,
                        "df": r.df,
                        "p": r.p,
                    }
                ]

            rows += _guard(base, run, cols)
    return rows


def _has_h_score(df) -> bool:
    return df is not None and "h_score" in df and df["h_score"].notna().any()


def survival(center, preds, training_preds, model, threshold, engine, curves=None) -> list[dict]:
    """Risk groups: low (score <= threshold) vs high (> threshold) by the Youden threshold of
    the training centers and by the training median of the H-score; Kaplan-Meier medians,
    log-rank, and the Cox HR of low vs high (as the paper reports it) per endpoint.
    ``curves``: a dict that receives ``("km", split_by, endpoint)`` -> the KM record."""
    cols = COLUMNS["survival"]
    if model is None:
        return []
    df = preds[model]
    splits = []
    splits.append(("youden", df["risk"].astype(float), "risk", threshold))
    train = training_preds.get(model)
    if _has_h_score(df) and _has_h_score(train):
        score, train_score, name = (
            df["h_score"].astype(float),
            train["h_score"].astype(float),
            "h_score",
        )
    else:  # until the features stage writes an h_score column, the best model's risk
        score, name = df["risk"].astype(float), "risk (no h_score column: best model's risk used)"
        train_score = train["risk"].astype(float) if train is not None else pd.Series(dtype=float)
    median = float(np.nanmedian(train_score)) if train_score.notna().any() else np.nan
    splits.append(("h_score_median", score, name, median))
    rows = []
    for split_by, values, name, cut in splits:
        for endpoint, (tcol, ecol) in ENDPOINTS.items():
            base = {
                "center": center,
                "model": model,
                "split_by": split_by,
                "score": name,
                "threshold": cut,
                "endpoint": endpoint,
                "engine": engine,
            }
            if not np.isfinite(cut):
                rows += _na(
                    {**base, "row": "comparison"}, cols, "no threshold from the training centers"
                )
                continue
            ok = values.notna() & df[tcol].notna() & df[ecol].notna()
            t, e = df.loc[ok, tcol].to_numpy(float), df.loc[ok, ecol].to_numpy(float)
            group = np.where(values[ok].to_numpy(float) > cut, "high", "low")
            if ok.sum() < MIN_N:
                rows += _na(
                    {**base, "row": "comparison", "n": int(ok.sum())},
                    cols,
                    f"n = {int(ok.sum())} < {MIN_N}",
                )
                continue
            for g in ("low", "high"):
                if not (group == g).any():
                    rows += _na(
                        {**base, "row": "group", "group": g, "n": 0, "events": 0},
                        cols,
                        "empty group",
                    )

            def run_km(t=t, e=e, group=group):
                km = api.km_logrank(t, e, group, engine=engine)
                out = [
                    {
                        "row": "group",
                        "group": r["group"],
                        "n": r["n"],
                        "events": r["events"],
                        "median_days": r["median"],
                    }
                    for _, r in km.groups.iterrows()
                ]
                return out, km

            try:
                group_rows, km = run_km()
                if curves is not None:
                    curves[("km", split_by, endpoint)] = km
            except api.DegenerateInput as err:
                rows += _na(
                    {
                        **base,
                        "row": "comparison",
                        "group": "low vs high",
                        "n": len(t),
                        "events": int(e.sum()),
                    },
                    cols,
                    str(err),
                )
                continue
            rows += [{**{c: np.nan for c in cols}, **base, "reason": "", **r} for r in group_rows]

            def run_cox(t=t, e=e, group=group, km=km):
                c = api.cox_hr(t, e, group, engine=engine)  # levels high < low: HR of low vs high
                return [
                    {
                        "hr": c.hr,
                        "hr_ci_low": c.ci_low,
                        "hr_ci_high": c.ci_high,
                        "hr_p": c.p,
                        "logrank_chi2": km.chi2,
                        "logrank_p": km.p,
                    }
                ]

            cmp_base = {
                **base,
                "row": "comparison",
                "group": "low vs high",
                "n": len(t),
                "events": int(e.sum()),
            }
            got = _guard(cmp_base, run_cox, cols)
            if got[0]["reason"]:
                got[0].update(logrank_chi2=km.chi2, logrank_p=km.p)
            rows += got
    return rows


# ---------------------------------------------------------------------------- entry


def _one_split(preds: dict, split, what: str) -> dict:
    """Each model's rows of ``split`` (None: the rows as given, one per patient); a model
    without rows of that split is left out, logged."""
    out = {}
    for model, df in preds.items():
        if split is not None:
            df = df[df["split"] == split]
            if df.empty:
                log.warning("%s: %s has no %s predictions: left out", what, model, split)
                continue
        elif df.duplicated(["center", "patient_id"]).any():
            raise InputError(f"{model}: several splits per patient ({sorted(set(df['split']))}); "
                             "name the split to evaluate")
        out[model] = df.reset_index(drop=True)
    return out


def _training_split(preds: dict) -> dict:
    """The training predictions thresholds are fixed on: out-of-fold where a model has them,
    else apparent, else (leave-one-center-out: the other centers') external ones."""
    out = {}
    for model, df in preds.items():
        split = next((s for s in ("oof", "apparent", "external") if (df["split"] == s).any()), None)
        if split is not None:
            out[model] = df[df["split"] == split].reset_index(drop=True)
    return out


def evaluate_center(center, predictions, training_predictions, tables, models, outputs, settings,
                    split=None, seed=None):
    """All section 2.8 analyses of one center on its ``split`` predictions (``external``;
    ``oof`` or ``apparent`` for the pooled training centers; None: one row per patient as
    given); writes the seven TSVs named in ``outputs``, and the curve TSVs of
    :data:`CURVE_COLUMNS` it names (the ROC band needs ``seed``, the config's master seed).
    Youden thresholds and the H-score median come from the training centers' out-of-fold
    predictions (apparent where a model has none)."""
    settings = section("stats", settings)
    engine = settings["engine"]
    models = list(models)
    preds = _one_split(read_predictions(predictions, models, log), split, center)
    training = _training_split(read_predictions(training_predictions, models, log))
    thresholds = youden_thresholds(training, engine)
    best = registry.best_model(preds, settings["best_model"])
    log.info(
        "%s: models %s; best model for subgroups and risk groups: %s; engine %s",
        center,
        list(preds),
        best,
        engine,
    )
    if best is not None and best not in training:
        log.warning("%s has no training predictions: no Youden or H-score threshold", best)
    curves = {} if any(k in outputs for k in CURVE_COLUMNS) else None
    bins = int(settings["calibration_bins"])
    tables_out = {
        "discrimination": discrimination(center, preds, thresholds, engine, curves, seed),
        "delong": delong(center, preds, engine),
        "nri_idi": nri_idi(center, preds, list(settings["nri_cutoffs"] or []), engine),
        "calibration": calibration(center, preds, bins, engine, curves),
        "decision_curve": decision_curve(center, preds, settings["decision_thresholds"], engine),
        "subgroups": subgroups(center, preds, best, tables, engine),
        "survival": survival(
            center, preds, training, best, thresholds.get(best, np.nan), engine, curves
        ),
    }
    if not tables_out["delong"]:
        log.info(
            "%s: no model pair of the paper among %s: delong.tsv and nri_idi.tsv have a "
            "header only",
            center,
            list(preds),
        )
    frames = {}
    for name, rows in tables_out.items():
        frame = pd.DataFrame(rows, columns=COLUMNS[name])
        frames[name] = frame
        if name in outputs:
            write_tsv(frame, outputs[name])
    if curves is not None:
        for name, frame in curve_frames(center, curves, best).items():
            frames[name] = frame
            if name in outputs:
                write_tsv(frame, outputs[name])
    return frames


def curve_frames(center, curves: dict, best) -> dict[str, pd.DataFrame]:
    """The records collected by the analyses as the tidy tables of :data:`CURVE_COLUMNS`
    (models in the order analysed; a model without a curve has no rows)."""
    parts = {name: [] for name in CURVE_COLUMNS}
    for key, rec in curves.items():
        if key[0] == "roc":
            model = key[1]
            parts["roc_curves"].append(rec.roc.assign(center=center, model=model))
            if not rec.band.empty:
                parts["roc_bands"].append(
                    rec.band.assign(
                        center=center,
                        model=model,
                        boot_n=rec.band.attrs["boot_n"],
                        conf_level=rec.band.attrs["conf_level"],
                        seed=rec.band.attrs["seed"],
                    )
                )
        elif key[0] == "calibration":
            model = key[1]
            bins = rec.curve.assign(curve="bin")
            smooth = pd.DataFrame(
                {
                    "curve": "smooth",
                    "mean_predicted": rec.smooth["predicted"],
                    "observed": rec.smooth["observed"],
                }
            )
            parts["calibration_curves"] += [
                bins.assign(center=center, model=model),
                smooth.assign(center=center, model=model),
            ]
        else:
            _, split_by, endpoint = key
            ids = {"center": center, "model": best, "split_by": split_by, "endpoint": endpoint}
            parts["km_curves"].append(rec.curves.assign(**ids))
            parts["km_at_risk"].append(rec.at_risk.assign(**ids))
    out = {}
    for name, columns in CURVE_COLUMNS.items():
        frames = [f for f in parts[name] if not f.empty]
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        out[name] = df.reindex(columns=columns)
    return out
