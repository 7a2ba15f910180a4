"""The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378), filled from a run.

Each item of the checklist is one row: its number, section and topic, a short statement of
what it asks, who fills it (``run``: this pipeline, from its outputs; ``author``: the
authors, who alone know it: funding, ethics, intended use, ...), what this run reports and
where (the outputs that satisfy it). :func:`checklist` builds the rows from a finished
run's tables; :func:`write_checklist` writes them as a TSV and an HTML page.

The requirement texts are short paraphrases; the checklist itself is the reference.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtnet.report.formatting import SYNTHETIC_BANNER, fmt_ci, fmt_count, fmt_p
from mtnet.tables import read_clinical, read_tsv, write_tsv

COLUMNS = ["item", "section", "topic", "requirement", "filled_by", "reported", "where"]
RUN, AUTHOR = "run", "author"
REFERENCE = "TRIPOD+AI: Collins GS et al. BMJ 2024;385:e078378 (doi:10.1136/bmj-2023-078378)"


@dataclass
class Run:
    """What the checklist reads of a finished run."""

    config: dict
    centers: list
    eval_centers: list
    models: list
    clinical: dict  # center -> DataFrame
    exclusions: dict  # center -> DataFrame
    missing: dict  # center -> DataFrame
    discrimination: dict  # evaluated center -> DataFrame
    calibration: dict
    subgroups: dict
    table1: pd.DataFrame
    folds: pd.DataFrame
    summaries: dict  # model -> DataFrame

    def role(self, center) -> str:
        return self.config["centers"][center]["role"]

    def source(self, center) -> str:
        return self.config["centers"][center]["source"]

    @property
    def train(self) -> list:
        return [c for c in self.centers if self.role(c) == "train"]

    @property
    def external(self) -> list:
        return [c for c in self.centers if self.role(c) == "external"]

    def where(self, *patterns) -> str:
        return "; ".join(patterns)


# ------------------------------------------------------------------------------ items


def _n_events(df) -> tuple[int, int, int]:
    mvi = pd.to_numeric(df["mvi"], errors="coerce") if "mvi" in df else pd.Series(dtype=float)
    return len(df), int(mvi.sum()), int(mvi.isna().sum())


def _data_sources(r: Run) -> str:
    parts = []
    for c in r.centers:
        entry = r.config["centers"][c]
        if entry["source"] == "synthetic":
            what = f"synthetic (preset {entry['synthetic']['preset']}, seed {r.config['seed']})"
        else:
            what = (
                f"a hospital's files ({entry.get('image_format', 'dicom')} CT at "
                f"{entry['images']}, clinical table {entry['clinical']})"
            )
        parts.append(f"{c} ({'development' if r.role(c) == 'train' else 'evaluation'}): {what}")
    return "; ".join(parts)


def _setting(r: Run) -> str:
    return (
        f"{len(r.centers)} centers: {len(r.train)} for development ({', '.join(r.train)}), "
        f"{len(r.external)} for external evaluation ({', '.join(r.external)})"
    )


def _exclusions(r: Run) -> str:
    parts = []
    for c in r.centers:
        ex = r.exclusions[c]
        n = len(r.clinical[c])
        if ex.empty:
            parts.append(f"{c}: {n} ingested, none excluded")
        else:
            reasons = ex["reason"].astype(str).value_counts()
            why = ", ".join(f"{k} ({v})" for k, v in reasons.items())
            parts.append(f"{c}: {n} ingested, {len(ex)} excluded: {why}")
    return "; ".join(parts)


def _treatments(r: Run) -> str:
    parts = []
    for c in r.centers:
        df = r.clinical[c]
        if "treatment" not in df:
            parts.append(f"{c}: not recorded")
            continue
        counts = df["treatment"].fillna("NA").astype(str).value_counts()
        parts.append(f"{c}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return (
        "; ".join(parts)
        + ". The initial treatment is a candidate predictor (and a subgroup), not a "
        "stratification of the models"
    )


def _preparation(r: Run) -> str:
    ing, tum = r.config["ingest"], r.config["tumor"]
    backends = {
        c: r.config["centers"][c].get("liver_backend", r.config["liver"]["default_backend"])
        for c in r.centers
    }
    return (
        f"CT resampled to {ing['spacing_mm']} mm (x, y, z)"
        f"{'' if ing['upsample'] else ', or the scanner spacing of an axis sampled more coarsely'}"
        ", HU, identity direction; tumor "
        f"masks on the image grid; clinical tables mapped to the canonical columns and "
        f"validated; liver masks by backend ({', '.join(f'{c} {b}' for c, b in backends.items())}"
        "); "
        f"target lesion by {tum.get('target_lesion', 'the configured rule')}, peritumoral ring "
        f"{tum['ring_mm']} mm, MTnet ROI {tum['roi_grid']} voxels. The same steps for every "
        "center and patient; per-patient QC tables and montages per center"
    )


def _outcome(r: Run) -> str:
    parts = []
    for c in r.centers:
        n, ev, na = _n_events(r.clinical[c])
        parts.append(f"{c} {ev}/{n}" + (f" ({na} unknown)" if na else ""))
    return (
        "Macrovascular invasion (MVI) during follow-up (0/1, column mvi), with the time to MVI "
        "or censoring (time_to_mvi_days); overall survival (death, os_days) as the second "
        "endpoint of the risk groups. Events per center: " + ", ".join(parts)
    )


def _predictors(r: Run) -> str:
    from mtnet.factors import MODEL_FACTORS
    from mtnet.model import registry

    parts = []
    for m in r.models:
        spec = registry.MODELS.get(m)
        if spec is None:
            continue
        parts.append(f"{m}: {spec.information} information ({spec.description})")
    return (
        f"Candidate clinical and radiological factors: {', '.join(MODEL_FACTORS)} (all "
        "available factors of the paper, no pre-selection by outcome); image models read the "
        "portal-phase CT (the tumor ROI, or handcrafted features of the lesion and ring). "
        "Models: " + "; ".join(parts)
    )


def _sample_size(r: Run) -> str:
    parts = []
    for c in r.centers:
        n, ev, _ = _n_events(r.clinical[c])
        parts.append(f"{c}: n = {n}, {ev} events")
    n_train = sum(_n_events(r.clinical[c])[0] for c in r.train)
    ev_train = sum(_n_events(r.clinical[c])[1] for c in r.train)
    epv = []
    for m, s in r.summaries.items():
        terms = len(s[s.iloc[:, 0].astype(str) != "(intercept)"]) if len(s.columns) else 0
        if terms:
            epv.append(f"{m} {terms} terms ({ev_train / terms:.1f} events per term)")
    return (
        "; ".join(parts)
        + f". Development: {n_train} patients, {ev_train} events"
        + (f"; {', '.join(epv)}" if epv else "")
        + ". The sample size is the cohort's, not calculated"
    )


def _missing(r: Run) -> str:
    parts = []
    for c in r.centers:
        absent = r.missing[c]
        df = r.clinical[c]
        from mtnet.factors import MODEL_FACTORS

        present = [f for f in MODEL_FACTORS if f in df]
        na = {f: int(df[f].isna().sum()) for f in present if df[f].isna().any()}
        text = f"{c}: "
        text += (
            f"columns absent: {', '.join(absent['column'].astype(str))}"
            if not absent.empty
            else "no column absent"
        )
        text += (
            "; missing values: " + ", ".join(f"{k} {v}" for k, v in na.items())
            if na
            else "; no missing value"
        )
        parts.append(text)
    return (
        "; ".join(parts)
        + ". Handling: a factor absent, entirely missing or constant in training is dropped "
        "(logged with its reason); remaining missing values take the training median "
        "(continuous) or most frequent level, fitted on the training centers only; patients "
        "without a known outcome are left out of the statistics (logged)"
    )


def _data_use(r: Run) -> str:
    k = r.config["validation"]["folds"]
    n_folds = int(r.folds["fold"].nunique()) if "fold" in r.folds else k
    return (
        f"Development on the pooled training centers ({', '.join(r.train)}); internal "
        f"validation by {n_folds}-fold cross-validation stratified by center and outcome (one "
        f"split file for every model): each training patient's out-of-fold risk comes from "
        f"the whole procedure refitted without the patient's fold; external validation on "
        f"{', '.join(r.external)} with the models fitted on all training patients, unchanged"
    )


def _predictor_handling(r: Run) -> str:
    return (
        "Continuous factors per unit (standardised to the training mean and SD for "
        "fitting, coefficients reported per unit); categorical factors one indicator per "
        "level present in training against the first code; AFP (< 25, 25-400, > 400 ng/mL) "
        "and lesion number (1, 2, 3, > 3) by the paper's groups; levels absent from training "
        "pooled with the nearest level; radiomics features harmonised across centers "
        f"({r.config.get('features', {}).get('harmonization', 'combat')}), variance- and "
        "correlation-filtered, standardised"
    )


def _model_building(r: Run) -> str:
    from mtnet.model import registry

    parts = []
    for m in r.models:
        spec = registry.MODELS.get(m)
        section = spec.settings if spec else None
        settings = r.config.get(section, {}) if section else {}
        keys = ", ".join(f"{k} = {v}" for k, v in settings.items() if not isinstance(v, dict))
        parts.append(
            f"{m}: {spec.description if spec else m}" + (f" (settings: {keys})" if keys else "")
        )
    return "; ".join(parts) + ". Tuning by inner cross-validation seeded from the master seed"


def _performance_measures(r: Run) -> str:
    s = r.config["stats"]
    return (
        "Discrimination: ROC curve, AUC with the DeLong 95% CI, paired DeLong tests, "
        f"continuous and categorical NRI (cut-offs {s.get('nri_cutoffs')}) and IDI; "
        f"calibration: intercept and slope, Brier score, Hosmer-Lemeshow over "
        f"{s.get('calibration_bins')} groups, calibration plot with Wilson CIs and a lowess "
        f"smooth; clinical utility: decision curve (thresholds {s.get('decision_thresholds')}) "
        "with treat-all and treat-none; risk groups: Kaplan-Meier, log-rank and Cox HR for "
        "time to MVI and OS by the Youden threshold and the H-score median; engine "
        f"{s.get('engine')}"
    )


def _thresholds(r: Run) -> str:
    parts = []
    for c in r.eval_centers:
        d = r.discrimination.get(c)
        if d is None or d.empty:
            continue
        for _, row in d.iterrows():
            if not pd.isna(row.get("threshold")):
                parts.append(f"{row['model']} {float(row['threshold']):.3f}")
        break
    return (
        "Each model outputs a probability of MVI. Risk groups: high = risk above the model's "
        "Youden threshold (maximising sensitivity + specificity - 1) fixed on the pooled "
        "training predictions (out-of-fold where the model has them) and applied unchanged, "
        "and the training median of the H-score"
        + (f". Thresholds: {', '.join(parts)}" if parts else "")
    )


def _differences(r: Run) -> str:
    t = r.table1
    parts = []
    for c in r.external:
        rows = t[(t["external_center"].astype(str) == c) & t["p"].notna()]
        sig = rows[rows["p"].astype(float) < 0.05]
        names = ", ".join(dict.fromkeys(sig["variable"].astype(str)))
        parts.append(
            f"{c}: {len(sig)} of {len(rows)} tested characteristics differ at p < 0.05"
            + (f" ({names})" if names else "")
        )
    return (
        "Same eligibility, outcome definition and predictors for every center (one config, "
        "one ingestion); the distributions: " + "; ".join(parts)
    )


def _flow(r: Run) -> str:
    parts = []
    for c in r.centers:
        df = r.clinical[c]
        n, ev, na = _n_events(df)
        follow = pd.to_numeric(df.get("time_to_mvi_days", pd.Series(dtype=float)), errors="coerce")
        fu = f", median follow-up {follow.median():.0f} days" if follow.notna().any() else ""
        parts.append(
            f"{c}: {n + len(r.exclusions[c])} delivered, {len(r.exclusions[c])} excluded, "
            f"{n} analysed, {ev} with MVI, {n - ev - na} without"
            + (f", {na} unknown" if na else "")
            + fu
        )
    return "; ".join(parts)


def _characteristics(r: Run) -> str:
    return (
        "Table 1: every clinical and radiological factor and the outcome, pooled training "
        f"centers against each external center ({', '.join(r.external)}), with the test "
        "used per row; per-center n, events and missing values in items 10 and 11"
    )


def _numbers(r: Run) -> str:
    parts = []
    for c in r.eval_centers:
        d = r.discrimination.get(c)
        if d is None or d.empty:
            continue
        row = d.iloc[0]
        parts.append(f"{c}: {fmt_count(row['n'])} patients, {fmt_count(row['n_events'])} events")
    return "Per evaluated center (every model the same patients): " + "; ".join(parts)


def _specification(r: Run) -> str:
    return (
        "Each fitted model is a folder (results/models/<model>/model: the fitted "
        "parameters, the encoding, identity.json with the code's commit and the training "
        "centers' settings) usable by this code to predict new patients; summary.tsv lists "
        f"the coefficients or selected features. Models: {', '.join(r.models)}"
    )


def _performance(r: Run) -> str:
    parts = []
    for c in r.eval_centers:
        d = r.discrimination.get(c)
        if d is None:
            continue
        cal = r.calibration.get(c)
        for _, row in d.iterrows():
            auc = fmt_ci(row["auc"], row["ci_low"], row["ci_high"])
            text = f"{c} {row['model']}: AUC {auc}"
            if cal is not None:
                s = cal[(cal["row"] == "summary") & (cal["model"] == row["model"])]
                if len(s) and not pd.isna(s["slope"].iloc[0]):
                    text += (
                        f", calibration slope {float(s['slope'].iloc[0]):.2f}, Brier "
                        f"{float(s['brier'].iloc[0]):.3f}"
                    )
            if row.get("reason"):
                text += f" ({row['reason']})"
            parts.append(text)
    return "; ".join(parts) + ". Subgroup AUCs (sex, age and the paper's factors): item 14"


def heterogeneity(r: Run) -> dict[str, dict]:
    """Per model, the AUCs of the independent evaluations (each external center and the
    pooled training centers' out-of-fold risks) pooled by inverse variance (SE from the
    DeLong CI): Cochran's Q, its p and I² (statsmodels.stats.meta_analysis)."""
    from statsmodels.stats.meta_analysis import combine_effects

    from mtnet.config import POOLED_TRAIN

    centers = [c for c in r.eval_centers if c in r.external or c == POOLED_TRAIN]
    out = {}
    for m in r.models:
        est, var, names = [], [], []
        for c in centers:
            d = r.discrimination.get(c)
            if d is None:
                continue
            row = d[d["model"] == m]
            if row.empty or pd.isna(row["auc"].iloc[0]) or pd.isna(row["ci_low"].iloc[0]):
                continue
            se = (float(row["ci_high"].iloc[0]) - float(row["ci_low"].iloc[0])) / (2 * 1.959964)
            if se <= 0:
                continue
            est.append(float(row["auc"].iloc[0]))
            var.append(se**2)
            names.append(c)
        if len(est) < 2:
            out[m] = {"centers": names, "k": len(est)}
            continue
        res = combine_effects(np.asarray(est), np.asarray(var), method_re="dl")
        test = res.test_homogeneity()
        out[m] = {
            "centers": names,
            "k": len(est),
            "q": float(test.statistic),
            "p": float(test.pvalue),
            # I² is reported truncated at 0 (statsmodels gives (Q - df) / Q)
            "i2": max(0.0, float(res.i2)),
            "pooled": float(res.mean_effect_fe),
        }
    return out


def _heterogeneity(r: Run) -> str:
    het = heterogeneity(r)
    parts = []
    for m, h in het.items():
        if h["k"] < 2:
            parts.append(f"{m}: {h['k']} independent evaluation(s), no heterogeneity estimate")
        else:
            parts.append(
                f"{m} across {', '.join(h['centers'])}: Cochran's Q {h['q']:.2f} "
                f"(p {fmt_p(h['p'])}), I² {100 * h['i2']:.0f}%"
            )
    return (
        "AUCs of the independent evaluations (each external center, the training centers' "
        "out-of-fold risks) pooled by inverse variance (DeLong SEs): " + "; ".join(parts)
    )


def _fairness(r: Run) -> str:
    parts = []
    for c in r.eval_centers:
        s = r.subgroups.get(c)
        if s is None or s.empty:
            continue
        for factor in ("sex", "age"):
            rows = s[(s["factor"] == factor) & (s["row"] == "level")]
            cells = [
                f"{lv['level']} {fmt_ci(lv['auc'], lv['ci_low'], lv['ci_high'])}"
                for _, lv in rows.iterrows()
            ]
            comp = s[(s["factor"] == factor) & (s["row"] == "comparison")]
            p = fmt_p(comp["p"].iloc[0]) if len(comp) else "—"
            if cells:
                parts.append(f"{c} {factor}: {', '.join(cells)} (p {p})")
    return (
        "No fairness intervention; performance is reported per sex and age group (and the "
        "paper's other factors) with the unpaired DeLong test between levels: "
        + ("; ".join(parts) or "no subgroup rows")
    )


def _imbalance(r: Run) -> str:
    from mtnet.model import registry

    fams = {registry.MODELS[m].family for m in r.models if m in registry.MODELS}
    text = (
        "No resampling or reweighting for the logistic models"
        if fams & {"clinical_lr", "radiomics"}
        else ""
    )
    others = [
        m
        for m in r.models
        if m in registry.MODELS and registry.MODELS[m].family not in ("clinical_lr", "radiomics")
    ]
    if others:
        text += ("; " if text else "") + f"{', '.join(others)}: see the model's description"
    return (text or "—") + "; no recalibration afterwards (the calibration is reported as is)"


def _code(r: Run) -> str:
    from mtnet.provenance import code_identity

    code = code_identity()
    return (
        f"This run's code: mtnet {code['mtnet_version']}, git commit {code['commit']}"
        f"{' (dirty tree)' if code['dirty'] else ''}; every input and output is hashed in "
        "the provenance manifest, which `mtnet audit results/` checks"
    )


def _data_sharing(r: Run) -> str:
    synth = [c for c in r.centers if r.source(c) == "synthetic"]
    if len(synth) == len(r.centers):
        return (
            "All data are synthetic and regenerated exactly from the config's seed by this "
            "code (no patient data). For patient data: the authors state availability"
        )
    return "The authors state the availability of the hospitals' data"


# (item, section, topic, requirement, filler: a function of the run, or None = author)
ITEMS: list[tuple[str, str, str, str, Callable[[Run], str] | None, tuple]] = [
    (
        "1",
        "Title",
        "Title",
        "Identify the study as developing or evaluating a multivariable "
        "prediction model, its target population and outcome.",
        None,
        (),
    ),
    ("2", "Abstract", "Abstract", "Follow the TRIPOD+AI for Abstracts checklist.", None, ()),
    (
        "3a",
        "Introduction",
        "Background",
        "Healthcare context and rationale, with references " "to existing models.",
        None,
        (),
    ),
    (
        "3b",
        "Introduction",
        "Background",
        "Target population, intended purpose and users of " "the model in the care pathway.",
        None,
        (),
    ),
    (
        "3c",
        "Introduction",
        "Background",
        "Known health inequalities between sociodemographic " "groups.",
        None,
        (),
    ),
    ("4", "Introduction", "Objectives", "Objectives: development, validation or both.", None, ()),
    (
        "5a",
        "Methods",
        "Data",
        "Data sources of the development and evaluation data, their "
        "rationale and representativeness.",
        _data_sources,
        ("config (centers)", "results/ingest/<center>/qc.tsv"),
    ),
    ("5b", "Methods", "Data", "Dates of participant accrual and end of follow-up.", None, ()),
    (
        "6a",
        "Methods",
        "Participants",
        "Study setting, number and location of centers.",
        _setting,
        ("config (centers)",),
    ),
    (
        "6b",
        "Methods",
        "Participants",
        "Eligibility criteria.",
        _exclusions,
        ("results/ingest/<center>/exclusions.tsv",),
    ),
    (
        "6c",
        "Methods",
        "Participants",
        "Treatments received and how they were handled.",
        _treatments,
        ("results/ingest/<center>/clinical.tsv", "Table 1"),
    ),
    (
        "7",
        "Methods",
        "Data preparation",
        "Pre-processing and quality checking, and whether " "similar across groups.",
        _preparation,
        (
            "results/ingest/<center>/qc.tsv",
            "results/liver/<center>/qc.tsv",
            "results/tumor/<center>/lesions.tsv",
            "results/tumor/<center>/roi_montage.png",
        ),
    ),
    (
        "8a",
        "Methods",
        "Outcome",
        "Definition of the outcome, time horizon, how and when " "assessed.",
        _outcome,
        ("results/ingest/<center>/clinical.tsv", "Table 1"),
    ),
    (
        "8b",
        "Methods",
        "Outcome",
        "Qualifications of outcome assessors where interpretation " "is subjective.",
        None,
        (),
    ),
    ("8c", "Methods", "Outcome", "Blinding of the outcome assessment.", None, ()),
    (
        "9a",
        "Methods",
        "Predictors",
        "Choice of initial predictors and any pre-selection.",
        _predictors,
        ("src/mtnet/factors.py", "src/mtnet/model/registry.py"),
    ),
    (
        "9b",
        "Methods",
        "Predictors",
        "Definition of every predictor, how and when measured.",
        _predictors,
        ("docs/design.md section 2",),
    ),
    (
        "9c",
        "Methods",
        "Predictors",
        "Qualifications of predictor assessors where "
        "interpretation is subjective (the radiological readings).",
        None,
        (),
    ),
    (
        "10",
        "Methods",
        "Sample size",
        "How the study size was arrived at, per dataset, and " "its justification.",
        _sample_size,
        ("results/ingest/<center>/clinical.tsv", "results/models/<model>/summary.tsv"),
    ),
    (
        "11",
        "Methods",
        "Missing data",
        "How missing data were handled; reasons for omitted " "data.",
        _missing,
        ("results/ingest/<center>/missing_columns.tsv", "results/logs/train_model/<model>.log"),
    ),
    (
        "12a",
        "Methods",
        "Analytical methods",
        "How the data were used (development, " "evaluation, partitioning).",
        _data_use,
        ("results/splits/folds.tsv",),
    ),
    (
        "12b",
        "Methods",
        "Analytical methods",
        "How predictors were handled (functional form, " "rescaling, standardisation).",
        _predictor_handling,
        ("results/models/<model>/model",),
    ),
    (
        "12c",
        "Methods",
        "Analytical methods",
        "Type of model, all model-building steps, " "hyperparameter tuning, internal validation.",
        _model_building,
        ("results/models/<model>/training.svg", "results/models/<model>/training_log.tsv"),
    ),
    (
        "12d",
        "Methods",
        "Analytical methods",
        "Handling and quantification of heterogeneity " "across clusters (hospitals).",
        _heterogeneity,
        ("results/stats/<center>/discrimination.tsv",),
    ),
    (
        "12e",
        "Methods",
        "Analytical methods",
        "Measures and plots of performance, and model " "comparisons.",
        _performance_measures,
        ("results/figures/<center>/", "results/tables/<center>/"),
    ),
    (
        "12f",
        "Methods",
        "Analytical methods",
        "Model updating (recalibration) arising from " "the evaluation.",
        lambda r: "None: every model is applied to the external centers " "unchanged",
        (),
    ),
    (
        "12g",
        "Methods",
        "Analytical methods",
        "How the model predictions were calculated " "(formula, code, object).",
        _specification,
        ("results/models/<model>/model",),
    ),
    (
        "13",
        "Methods",
        "Class imbalance",
        "Class-imbalance methods and any recalibration.",
        _imbalance,
        (),
    ),
    (
        "14",
        "Methods",
        "Fairness",
        "Approaches to model fairness and their rationale.",
        _fairness,
        ("results/figures/<center>/forest.svg", "results/stats/<center>/subgroups.tsv"),
    ),
    (
        "15",
        "Methods",
        "Model output",
        "Output of the model and how any thresholds were " "identified.",
        _thresholds,
        ("results/stats/<center>/discrimination.tsv", "results/stats/<center>/survival.tsv"),
    ),
    (
        "16",
        "Methods",
        "Training versus evaluation",
        "Differences between development and "
        "evaluation data (setting, eligibility, outcome, predictors).",
        _differences,
        ("results/tables/table1.html", "results/stats/table1.tsv"),
    ),
    ("17", "Methods", "Ethical approval", "Ethics committee and informed consent.", None, ()),
    ("18a", "Open science", "Funding", "Source of funding and role of the funders.", None, ()),
    (
        "18b",
        "Open science",
        "Conflicts of interest",
        "Conflicts of interest of all authors.",
        None,
        (),
    ),
    ("18c", "Open science", "Protocol", "Where the protocol can be accessed.", None, ()),
    ("18d", "Open science", "Registration", "Study registration.", None, ()),
    (
        "18e",
        "Open science",
        "Data sharing",
        "Availability of the study data.",
        _data_sharing,
        ("config",),
    ),
    (
        "18f",
        "Open science",
        "Code sharing",
        "Availability of the analytical code.",
        _code,
        ("results/provenance/manifest.json",),
    ),
    (
        "19",
        "Open science",
        "Patient and public involvement",
        "Patient and public " "involvement, or none.",
        None,
        (),
    ),
    (
        "20a",
        "Results",
        "Participants",
        "Flow of participants, with and without the outcome, " "follow-up.",
        _flow,
        ("results/ingest/<center>/exclusions.tsv", "results/ingest/<center>/clinical.tsv"),
    ),
    (
        "20b",
        "Results",
        "Participants",
        "Characteristics per data source: predictors, "
        "treatments, sample size, events, follow-up, missing data.",
        _characteristics,
        ("results/tables/table1.html",),
    ),
    (
        "20c",
        "Results",
        "Participants",
        "For evaluation: the distribution of important "
        "predictors compared with the development data.",
        _differences,
        ("results/tables/table1.html",),
    ),
    (
        "21",
        "Results",
        "Model development",
        "Participants and events in each analysis.",
        _numbers,
        ("results/stats/<center>/discrimination.tsv",),
    ),
    (
        "22",
        "Results",
        "Model specification",
        "The full model, to predict new individuals "
        "and enable third-party evaluation, and any restrictions.",
        _specification,
        ("results/models/<model>/",),
    ),
    (
        "23a",
        "Results",
        "Model performance",
        "Performance with confidence intervals, also " "in key subgroups; plots.",
        _performance,
        (
            "results/tables/<center>/discrimination.html",
            "results/figures/<center>/roc.svg",
            "results/figures/<center>/calibration.svg",
        ),
    ),
    (
        "23b",
        "Results",
        "Model performance",
        "Heterogeneity of performance across clusters.",
        _heterogeneity,
        ("results/stats/<center>/discrimination.tsv",),
    ),
    (
        "24",
        "Results",
        "Model updating",
        "Results of any model updating.",
        lambda r: "No model updating: every model is reported as fitted on the training centers, without recalibration",
        (),
    ),
    ("25", "Discussion", "Interpretation", "Overall interpretation, including fairness.", None, ()),
    (
        "26",
        "Discussion",
        "Limitations",
        "Limitations (sample, size, overfitting, missing data) " "and their effects.",
        None,
        (),
    ),
    (
        "27a",
        "Discussion",
        "Usability",
        "How poor-quality or unavailable input data should " "be assessed and handled in use.",
        None,
        (),
    ),
    (
        "27b",
        "Discussion",
        "Usability",
        "Whether users interact with the input data or the " "model, and the expertise required.",
        None,
        (),
    ),
    ("27c", "Discussion", "Usability", "Next steps for future research.", None, ()),
]


def checklist(run: Run) -> pd.DataFrame:
    """One row per TRIPOD+AI item (:data:`COLUMNS`)."""
    rows = []
    for item, section, topic, requirement, fill, where in ITEMS:
        if fill is None:
            reported, by, at = "to be written by the authors", AUTHOR, ""
        else:
            reported, by, at = fill(run), RUN, "; ".join(where)
        rows.append(
            {
                "item": item,
                "section": section,
                "topic": topic,
                "requirement": requirement,
                "filled_by": by,
                "reported": reported,
                "where": at,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------------------------- I/O


def _by_center(paths, centers) -> dict:
    return {c: p for c, p in zip(centers, paths)}


def read_run(inputs: Mapping, *, config, centers, eval_centers, models) -> Run:
    """The run's tables from the checklist rule's inputs (lists in the order of
    ``centers`` / ``eval_centers`` / ``models``)."""
    clinical = {c: read_clinical(p) for c, p in _by_center(inputs["clinical"], centers).items()}
    return Run(
        config=config,
        centers=list(centers),
        eval_centers=list(eval_centers),
        models=list(models),
        clinical=clinical,
        exclusions={c: read_tsv(p) for c, p in _by_center(inputs["exclusions"], centers).items()},
        missing={c: read_tsv(p) for c, p in _by_center(inputs["missing"], centers).items()},
        discrimination={
            c: read_tsv(p) for c, p in _by_center(inputs["discrimination"], eval_centers).items()
        },
        calibration={
            c: read_tsv(p) for c, p in _by_center(inputs["calibration"], eval_centers).items()
        },
        subgroups={
            c: read_tsv(p) for c, p in _by_center(inputs["subgroups"], eval_centers).items()
        },
        table1=read_tsv(inputs["table1"]),
        folds=read_tsv(inputs["folds"]),
        summaries={m: read_tsv(p) for m, p in zip(models, inputs["summaries"])},
    )


def checklist_html(df: pd.DataFrame, *, synthetic: bool) -> str:
    """The checklist as one table; the authors' items shaded."""
    cell = "padding:3px 6px;border-bottom:1px solid #ccc;vertical-align:top;text-align:left"
    head = "".join(
        f"<th style='{cell};border-bottom:2px solid #000'>{h}</th>"
        for h in ("Item", "Section", "Topic", "Asks", "Filled by", "This run", "Where")
    )
    body = []
    for _, r in df.iterrows():
        shade = "background:#fff4e5" if r["filled_by"] == AUTHOR else ""
        body.append(
            f"<tr class='mtnet-item mtnet-{r['filled_by']}' style='{shade}'>"
            + "".join(
                f"<td style='{cell}'>{html.escape(str(r[k]))}</td>"
                for k in (
                    "item",
                    "section",
                    "topic",
                    "requirement",
                    "filled_by",
                    "reported",
                    "where",
                )
            )
            + "</tr>"
        )
    n_run = int((df["filled_by"] == RUN).sum())
    banner = (
        f"<p><b style='background:#B22222;color:#fff;padding:3px 8px'>"
        f"{html.escape(SYNTHETIC_BANNER)}</b></p>"
        if synthetic
        else ""
    )
    return (
        f"{banner}<h3>TRIPOD+AI checklist</h3><p>{html.escape(REFERENCE)}. {n_run} of "
        f"{len(df)} items are filled from this run (with the outputs that show them); the "
        f"{len(df) - n_run} shaded items are the authors' to write.</p>"
        f"<table class='mtnet-table mtnet-checklist' style='border-collapse:collapse;"
        f"font-family:sans-serif;font-size:0.82em'><thead><tr>{head}</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def write_checklist(
    inputs: Mapping, outputs: Mapping, *, config, centers, eval_centers, models
) -> pd.DataFrame:
    """Read the run, fill the checklist, write ``outputs["tsv"]`` and ``outputs["html"]``."""
    from mtnet.report.render import write_page

    run = read_run(inputs, config=config, centers=centers, eval_centers=eval_centers, models=models)
    df = checklist(run)
    write_tsv(df, outputs["tsv"])
    synthetic = any(run.source(c) == "synthetic" for c in run.centers)
    write_page(outputs["html"], "TRIPOD+AI checklist", checklist_html(df, synthetic=synthetic))
    return df


__all__ = [
    "COLUMNS",
    "ITEMS",
    "Run",
    "checklist",
    "checklist_html",
    "heterogeneity",
    "read_run",
    "write_checklist",
]
