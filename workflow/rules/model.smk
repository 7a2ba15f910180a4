rule splits:
    """The one split file: folds of the training patients, stratified by center and outcome."""
    input:
        tables=get_training_tables,
    output:
        SPLIT_FILE,
    log:
        "results/logs/splits/all.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        folds=config["validation"]["folds"],
        scheme=config["validation"]["scheme"],
        centers=MODEL_CENTERS,
        seed=config["seed"],
    script:
        "../scripts/splits.py"


rule train_network:
    """One fold of a network (MTnet's variants): trained on the other folds' patients, its
    own fold predicted; a GPU job on a cluster (slurm/config.yaml), the CPU elsewhere.
    """
    input:
        unpack(get_fold_training_input),
    output:
        directory("results/models/{model}/folds/{fold}"),
    log:
        "results/logs/train_network/{model}/{fold}.log",
    wildcard_constraints:
        model=NETWORK_MODELS,
        fold="[0-9]+",
    conda:
        "../../envs/model.yaml"
    threads: config["mtnet"]["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        settings=get_model_settings,
        seed=config["seed"],
    script:
        "../scripts/train_network.py"


rule train_model:
    """A model of the registry (src/mtnet/model/registry.py), fitted on the training centers."""
    input:
        unpack(get_model_training_input),
    output:
        model=directory("results/models/{model}/model"),
        summary=report(
            "results/models/{model}/summary.tsv",
            caption="../report/model_summary.rst",
            category="4. Models",
            subcategory="{model}",
        ),
        log="results/models/{model}/training_log.tsv",
    log:
        "results/logs/train_model/{model}.log",
    conda:
        "../../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=get_model_settings,
        seed=config["seed"],
        stages=get_stage_settings(),
        centers=config["centers"],
    script:
        "../scripts/train_model.py"


rule predict_model:
    """A fitted model's risks for one center (split: apparent for a training center,
    external otherwise)."""
    input:
        unpack(get_model_prediction_input),
    output:
        "results/predictions/{center}/{model}.tsv",
    log:
        "results/logs/predict_model/{center}/{model}.log",
    conda:
        "../../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        role=get_prediction_role,
        settings=get_model_settings,
    script:
        "../scripts/predict_model.py"
