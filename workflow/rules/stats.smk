rule stats:
    """Paper section 2.8 for one external center, or for the pooled training centers."""
    input:
        predictions=get_predictions,
        training_predictions=get_training_predictions,
        tables=get_member_tables,
    output:
        discrimination="results/stats/{center}/discrimination.tsv",
        delong="results/stats/{center}/delong.tsv",
        nri_idi="results/stats/{center}/nri_idi.tsv",
        calibration="results/stats/{center}/calibration.tsv",
        decision_curve="results/stats/{center}/decision_curve.tsv",
        subgroups="results/stats/{center}/subgroups.tsv",
        survival="results/stats/{center}/survival.tsv",
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
        settings=config["stats"],
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
