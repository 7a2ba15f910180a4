rule tumor:
    """Target lesion (mRECIST), lesion count, tumor-in-liver check, ring and the MTnet crop."""
    input:
        unpack(get_tumor_input),
    output:
        lesions=report(
            "results/tumor/{center}/lesions.tsv",
            caption="../report/tumor_lesions.rst",
            category="3. Tumor",
            subcategory="{center}",
        ),
        roi=directory("results/tumor/{center}/roi"),
        rings=directory("results/tumor/{center}/rings"),
        exclusions="results/tumor/{center}/exclusions.tsv",
    log:
        "results/logs/tumor/{center}.log",
    conda:
        "../../envs/imaging.yaml"
    threads: config["tumor"]["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        settings=stage_settings("tumor"),
    script:
        "../scripts/tumor.py"
