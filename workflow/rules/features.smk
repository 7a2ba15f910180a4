rule features:
    """pyradiomics features of the target lesion and the peritumoral ring (handcrafted
    radiomics beside the deep models)."""
    input:
        unpack(get_features_input),
    output:
        table="results/features/{center}/radiomics.tsv",
        sidecar="results/features/{center}/radiomics.json",
    log:
        "results/logs/features/{center}.log",
    conda:
        "../../envs/model.yaml"
    threads: config["features"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    script:
        "../scripts/features.py"
