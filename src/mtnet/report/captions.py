"""The caption of every figure and table of the report, each stating its method inline.

One source for three uses: the HTML tables' ``<caption>`` (:func:`caption`), the
reStructuredText snippets Snakemake's ``report(..., caption=...)`` reads
(``src/mtnet/report/captions/<name>.rst``, written by :func:`write_rst`; a test keeps them
equal to this module), and the figures' documentation.

    python -m mtnet.report.captions src/mtnet/report/captions   # rewrite the .rst files
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

RST_DIR = Path(__file__).with_name("captions")
SYNTHETIC_SENTENCE = "Synthetic data: the results of a generated cohort, not of patients."
RST_SYNTHETIC = "Results of synthetic centers are synthetic and carry a SYNTHETIC DATA banner."
TABLE_FORMAT = (
    "AUC and other statistics with 3 decimals, intervals as estimate [low–high], p-values "
    "as < 0.001 or with 3 significant digits; — marks a value that could not be computed, "
    "with the reason in a footnote."
)


@dataclass(frozen=True)
class Caption:
    title: str
    text: str
    kind: str  # "figure" or "table"


CAPTIONS: dict[str, Caption] = {
    # ---------------------------------------------------------------- figures
    "roc": Caption(
        "ROC curves (paper Fig. 4A-B)",
        "Receiver operating characteristic curve of each model in one center: sensitivity "
        "against 1 − specificity at every threshold (the midpoints between consecutive "
        "distinct predicted risks, as pROC). Legend: AUC with its 95% confidence interval "
        "by DeLong's method (DeLong 1988, computed by the fast algorithm of Sun & Xu 2014). "
        "Shaded: pointwise 95% band of the sensitivity at fixed specificities (every 0.02) "
        "from stratified bootstrap resamples of the cases and the controls (as pROC ci.se: "
        "2.5th and 97.5th percentiles of the resampled curves' sensitivity, linearly "
        "interpolated between ROC points), seeded from the configuration's master seed; "
        "the number of resamples is printed in the legend.",
        "figure",
    ),
    "calibration": Caption(
        "Calibration (paper Fig. 4C-D)",
        "Observed proportion of MVI against the mean predicted risk in groups cut at the "
        "quantiles of the predicted risk (the Hosmer-Lemeshow groups, 10 by default), with "
        "95% Wilson score intervals; the curve is the lowess smooth of the outcome on the "
        "predicted risk (span 2/3, no robustness iterations, as rms::val.prob draws it); "
        "dashed: ideal calibration. Legend: intercept a and slope b of the logistic "
        "recalibration logit P(MVI) = a + b·logit(risk) (ideal 0 and 1) and the Brier score "
        "(mean squared difference of risk and outcome). Below: histogram of the predicted "
        "risks.",
        "figure",
    ),
    "decision_curve": Caption(
        "Decision curve (paper Fig. 4E)",
        "Net benefit of treating the patients whose predicted risk is at least the "
        "threshold probability pt, NB = TP/n − FP/n · pt/(1 − pt) (Vickers & Elkin 2006), "
        "against pt; treat all: prevalence − (1 − prevalence) · pt/(1 − pt); treat none: 0. "
        "A model is useful at the thresholds where its curve lies above both.",
        "figure",
    ),
    "km": Caption(
        "Kaplan-Meier curves by risk group (paper Fig. 6, S3)",
        "Kaplan-Meier estimates of the time to MVI or of overall survival in the low group "
        "(score ≤ threshold) and the high group (score > threshold), with pointwise 95% "
        "confidence bands (log-log transform, Greenwood variance) and ticks at censored "
        "times. The groups are cut at the best model's Youden threshold fixed on the pooled "
        "training centers (Fig. 6) or at the training centers' median H-score (Fig. S3). "
        "Above the plot: log-rank test (Mantel), hazard ratio of the low vs the high group "
        "from a Cox proportional-hazards model (Efron ties) with its Wald 95% CI and p, and "
        "the median times (not reached while the curve stays above 0.5). Below: the number "
        "of patients at risk (still followed and event-free) at each tick.",
        "figure",
    ),
    "forest": Caption(
        "Subgroup analysis (paper Fig. S2)",
        "AUC with its DeLong 95% CI of the best model within each level of each factor: age "
        "≤ 60 / > 60 years, sex, initial treatment, Child-Pugh class, cirrhosis, BCLC stage, "
        "maximum diameter ≤ 50 / > 50 mm, single / multiple lesions, AFP < 25 / 25–400 / "
        "> 400 ng/mL. p: unpaired DeLong test between two levels (t statistic with a "
        "Welch-Satterthwaite df, as pROC roc.test), on the factor's row for two levels and "
        "one row per pair for more. A level with fewer than 10 patients or without both "
        "outcomes has no AUC (—, with the reason). Dotted: AUC 0.5; dashed: all patients of "
        "the center.",
        "figure",
    ),
    "ceilings": Caption(
        "Model AUCs against the Bayes-optimal ceilings (synthetic cohort)",
        "Each model's AUC with its DeLong 95% CI in a synthetic center, coloured by the "
        "information the model sees (clinical table, CT image, or both), against the "
        "Bayes-optimal AUC of each information set, known because the cohort is generated: "
        "for both, the AUC of the true risk; for the clinical set (clinical factors and "
        "reader calls) and the image set (the true image traits, maximum diameter, lesion "
        "number), the AUC of the maximum-likelihood logistic model on that set, fitted on "
        "one draw of 100,000 patients from the generator and evaluated on an independent "
        "draw. A model clearly above its set's ceiling suggests leakage; far below it, "
        "signal the model misses.",
        "figure",
    ),
    "training_curves": Caption(
        "Training curves",
        "Per-epoch training log of a model: the losses (total training loss, binary "
        "cross-entropy of the MVI output, segmentation loss, loss on the inner validation "
        "split), the segmentation Dice and the AUC on the inner validation split, by epoch. "
        "Epochs without a value (not computed in that epoch) are skipped; a panel without "
        "any value says not recorded.",
        "figure",
    ),
    "fit_path": Caption(
        "Tuning path of a penalised fit",
        "How the model's penalty was chosen on the pooled training centers: the "
        "cross-validated score of each candidate value of the tuning parameter (log "
        "scale), from stratified folds of the training patients seeded from the "
        "configuration's master seed, and the value chosen (dashed). Model-Clinical-LR: "
        "log-likelihood of the held-out patients against the L2 penalty λ on the "
        "standardised coefficients (the largest wins, ties to the larger penalty). "
        "Radiomics models: AUC and log loss of the held-out patients against C, the "
        "inverse L1 penalty of the liblinear logistic regression.",
        "figure",
    ),
    # ----------------------------------------------------------------- tables
    "table1": Caption(
        "Table 1. Baseline characteristics",
        "Pooled training centers against each external center. Continuous variables: mean "
        "± SD when a Kolmogorov-Smirnov test does not reject normality (p > 0.05) in both "
        "groups, compared by Student's t-test; otherwise median (min–max) and the Wilcoxon "
        "rank-sum test. Ordinal variables (BCLC stage; number of lesions 1/2/3/>3; AFP < 25 "
        "/ 25–400 / > 400 ng/mL): n (%) and the Wilcoxon rank-sum test on the grade. "
        "Categorical variables: n (%) and Pearson's χ² test (Yates-corrected for 2 × 2 "
        "tables), or Fisher's exact test when an expected count is below 5. Percentages "
        "of the patients with a value; two-sided p.",
        "table",
    ),
    "discrimination": Caption(
        "Discrimination",
        "AUC with its DeLong 95% CI per model, on the patients with a known outcome; "
        "sensitivity and specificity at the model's Youden threshold (maximising "
        "sensitivity + specificity − 1), fixed on the pooled training predictions and "
        "applied unchanged (high risk = risk > threshold).",
        "table",
    ),
    "model_comparison": Caption(
        "Model comparison (paper Table S2)",
        "Model-CR-DR against each comparator. AUC [95% DeLong CI] of each model on its "
        "patients; paired DeLong test of the AUC difference on the patients both models "
        "predicted; net reclassification improvement, continuous (any change of risk) and "
        "categorical (between risk categories cut at the configured cut-offs, 0.157 by "
        "default), and integrated discrimination improvement (difference of the "
        "discrimination slopes) of the model over the comparator (Pencina 2008, as "
        "Hmisc::improveProb), each with a two-sided z-test p.",
        "table",
    ),
    "calibration_summary": Caption(
        "Calibration summary",
        "Intercept a and slope b of the logistic recalibration logit P(MVI) = a + "
        "b·logit(risk) (ideal 0 and 1; rms::val.prob's definition, fitted to convergence), "
        "Brier score (mean squared difference of risk and outcome), and the Hosmer-Lemeshow "
        "χ² over groups cut at the quantiles of the risk (df = groups − 2) with its p.",
        "table",
    ),
    "risk_groups": Caption(
        "Risk groups (paper section 3.4)",
        "The best model's low group (score ≤ threshold) and high group (score > threshold), "
        "cut at its Youden threshold fixed on the pooled training predictions, or at the "
        "training centers' median H-score. Per group: patients, events and the "
        "Kaplan-Meier median time (not reached while the curve stays above 0.5); between "
        "the groups: hazard ratio of low vs high from a Cox proportional-hazards model "
        "(Efron ties) with its Wald 95% CI and p, and the log-rank p.",
        "table",
    ),
}
FIGURES = tuple(k for k, c in CAPTIONS.items() if c.kind == "figure")
TABLES = tuple(k for k, c in CAPTIONS.items() if c.kind == "table")


def caption_parts(
    name: str, *, synthetic: bool = False, where: str | None = None
) -> tuple[str, str]:
    """(title with ``where``, e.g. the center; the method, the number formats of a table and
    the synthetic note)."""
    c = CAPTIONS[name]
    parts = [c.text]
    if c.kind == "table":
        parts.append(TABLE_FORMAT)
    if synthetic:
        parts.append(SYNTHETIC_SENTENCE)
    return f"{c.title}{f' — {where}' if where else ''}", " ".join(parts)


def caption(name: str, *, synthetic: bool = False, where: str | None = None) -> str:
    """Title, method and, for tables, the number formats, as one paragraph."""
    title, text = caption_parts(name, synthetic=synthetic, where=where)
    return f"{title}. {text}"


def rst(name: str) -> str:
    """The Snakemake report caption: bold title, method, and the evaluated center's note
    (the rule's ``note`` param, :func:`center_note`; the general synthetic sentence where a
    rule has none)."""
    c = CAPTIONS[name]
    lines = [f"**{c.title}.** {c.text}"]
    if c.kind == "table":
        lines.append(TABLE_FORMAT)
    lines.append(RST_NOTE)
    return "\n\n".join(lines) + "\n"


# Jinja, rendered by Snakemake's report with the job's params
RST_NOTE = '{{ snakemake.params.note or "' + RST_SYNTHETIC + '" }}'
POOLED_NAMES = {"oof": "out-of-fold", "apparent": "apparent, optimistic"}


def center_label(center: str, split: str | None = None) -> str:
    """How an evaluated center is named in titles: ``TX``, ``pooled training
    (out-of-fold)``, ``pooled training (apparent, optimistic)``."""
    if split in POOLED_NAMES:
        return f"pooled training ({POOLED_NAMES[split]})"
    return center


def center_note(center: str, *, synthetic: bool, split: str | None = None, members=()) -> str:
    """What a reader must know of the center a figure or table shows: whose data it is
    (synthetic or a hospital's) and, for the pooled training centers, whether the risks
    are out-of-fold or apparent (optimistic). ``split``: ``oof`` | ``apparent`` (the
    pooled training centers ``members``), ``external``, ``train`` (one training center),
    ``models`` (a model fitted on ``members``), ``held_out`` (one center under
    leave-one-center-out), ``loco`` (every center pooled, each predicted without it), None."""
    names = ", ".join(members)
    if split == "oof":
        where = (
            f"Pooled training centers ({names}), out-of-fold risks: each training patient "
            "is scored by the model refitted without the patient's fold (internal "
            "validation)."
        )
    elif split == "apparent":
        where = (
            f"Pooled training centers ({names}), apparent risks: the patients are scored "
            "by the model fitted on them, so these results are optimistic."
        )
    elif split == "external":
        where = (
            f"External center {center}: the models fitted on the training centers, "
            "applied unchanged."
        )
    elif split == "train":
        where = f"Training center {center}."
    elif split == "held_out":
        where = (
            f"Center {center}, held out: the models fitted on all the other centers "
            "(leave-one-center-out)."
        )
    elif split == "loco":
        where = (
            f"All centers pooled ({names}), each patient scored by the models fitted without "
            "the patient's center (leave-one-center-out)."
        )
    elif split == "models":
        where = f"Fitted on the pooled training centers ({names})."
    else:
        where = f"Center {center}."
    if synthetic:
        data = (
            "SYNTHETIC DATA: a generated cohort, not patients (every figure and table "
            "carries the banner)."
        )
    else:
        data = "A hospital's data (not synthetic)."
    return f"{where} {data}"


def write_rst(directory=RST_DIR) -> list[Path]:
    """``<name>.rst`` for every caption in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name in CAPTIONS:
        path = directory / f"{name}.rst"
        path.write_text(rst(name), encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":  # pragma: no cover
    for p in write_rst(sys.argv[1] if len(sys.argv) > 1 else RST_DIR):
        print(p)
