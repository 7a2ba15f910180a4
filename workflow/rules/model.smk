rule train_clinical_lr:
    """Model-Clinical-LR: multivariable logistic regression on the pooled training centers."""
    input:
        tables=get_training_tables,
    output:
        model="results/models/Model-Clinical-LR/model.json",
        coefficients=report(
            "results/models/Model-Clinical-LR/coefficients.tsv",
            caption="../report/clinical_lr.rst",
            category="4. Models",
        ),
    log:
        "results/logs/train_clinical_lr/all.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        seed=config["seed"],
    script:
        "../scripts/train_clinical_lr.py"


rule predict_clinical_lr:
    """Model-Clinical-LR risks for one center (split: apparent or external)."""
    input:
        model="results/models/Model-Clinical-LR/model.json",
        table="results/ingest/{center}/clinical.tsv",
    output:
        "results/predictions/{center}/Model-Clinical-LR.tsv",
    log:
        "results/logs/predict_clinical_lr/{center}.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        role=get_center_role,
    script:
        "../scripts/predict_clinical_lr.py"
