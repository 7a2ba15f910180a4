rule stats:
    """Paper section 2.8 for one external center, or for the pooled training centers."""
    input:
        predictions=get_predictions,
        training_predictions=get_training_predictions,
        tables=get_member_tables,
    output:
        discrimination=report(
            "results/stats/{center}/discrimination.tsv",
            caption="../report/stats_discrimination.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "21 discrimination.tsv", "shown as": "TSV (download)"},
        ),
        delong=report(
            "results/stats/{center}/delong.tsv",
            caption="../report/stats_delong.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "22 delong.tsv", "shown as": "TSV (download)"},
        ),
        nri_idi=report(
            "results/stats/{center}/nri_idi.tsv",
            caption="../report/stats_nri_idi.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "23 nri_idi.tsv", "shown as": "TSV (download)"},
        ),
        calibration=report(
            "results/stats/{center}/calibration.tsv",
            caption="../report/stats_calibration.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "24 calibration.tsv", "shown as": "TSV (download)"},
        ),
        decision_curve=report(
            "results/stats/{center}/decision_curve.tsv",
            caption="../report/stats_decision_curve.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "25 decision_curve.tsv", "shown as": "TSV (download)"},
        ),
        subgroups=report(
            "results/stats/{center}/subgroups.tsv",
            caption="../report/stats_subgroups.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "26 subgroups.tsv", "shown as": "TSV (download)"},
        ),
        survival=report(
            "results/stats/{center}/survival.tsv",
            caption="../report/stats_survival.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "27 survival.tsv", "shown as": "TSV (download)"},
        ),
        # the curves behind the figures (rule figures draws them)
        roc_curves=report(
            "results/stats/{center}/roc_curves.tsv",
            caption="../report/stats_roc_curves.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "31 roc_curves.tsv", "shown as": "TSV (download)"},
        ),
        roc_bands=report(
            "results/stats/{center}/roc_bands.tsv",
            caption="../report/stats_roc_bands.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "32 roc_bands.tsv", "shown as": "TSV (download)"},
        ),
        calibration_curves=report(
            "results/stats/{center}/calibration_curves.tsv",
            caption="../report/stats_calibration_curves.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={
                "result": "33 calibration_curves.tsv",
                "shown as": "TSV (download)",
            },
        ),
        km_curves=report(
            "results/stats/{center}/km_curves.tsv",
            caption="../report/stats_km_curves.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "34 km_curves.tsv", "shown as": "TSV (download)"},
        ),
        km_at_risk=report(
            "results/stats/{center}/km_at_risk.tsv",
            caption="../report/stats_km_at_risk.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "35 km_at_risk.tsv", "shown as": "TSV (download)"},
        ),
    log:
        "results/logs/stats/{center}.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        models=MODELS,
        split=get_evaluated_split,
        settings=config["stats"],
        # the ROC bands' resamples: derive_seed(seed, center, model)
        seed=config["seed"],
        note=get_center_note,
    script:
        "../scripts/stats.py"


rule table1:
    """Baseline table: pooled training centers against each external center."""
    input:
        train=get_clinical_tables(TRAIN_CENTERS),
        external=get_clinical_tables(EXTERNAL_CENTERS),
    output:
        report(
            "results/stats/table1.tsv",
            caption="../report/table1.rst",
            category="5. Statistics",
            subcategory="Table 1",
            labels={"result": "Table 1 (raw TSV, download)"},
        ),
    log:
        "results/logs/table1/all.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        train_centers=TRAIN_CENTERS,
        external_centers=EXTERNAL_CENTERS,
        settings=config["stats"],
    script:
        "../scripts/table1.py"


rule validity:
    """Every model against the synthetic cohort's truth: AUC, Bayes ceiling of its
    information set, paired gap to the true risk on the same patients."""
    input:
        unpack(get_validity_input),
    output:
        report(
            "results/stats/validity.tsv",
            caption="../report/validity.rst",
            category="5. Statistics",
        ),
    log:
        "results/logs/validity/all.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        results=lambda w, output: str(Path(output[0]).parent.parent),
        models=MODELS,
        settings=config["stats"],
    script:
        "../scripts/validity.py"
