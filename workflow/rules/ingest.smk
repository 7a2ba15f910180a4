rule ingest:
    """DICOM/NIfTI images, tumor masks and the clinical table of one center, standardised."""
    input:
        unpack(get_ingest_input),
    output:
        images=directory("results/ingest/{center}/images"),
        tumor=directory("results/ingest/{center}/tumor"),
        liver=directory("results/ingest/{center}/liver"),
        clinical="results/ingest/{center}/clinical.tsv",
        missing="results/ingest/{center}/missing_columns.tsv",
        exclusions="results/ingest/{center}/exclusions.tsv",
        qc=report(
            "results/ingest/{center}/qc.tsv",
            caption="../report/ingest_qc.rst",
            category="1. Ingestion",
            subcategory="{center}",
        ),
        montage=report(
            "results/ingest/{center}/qc_montage.png",
            caption="../report/ingest_montage.rst",
            category="1. Ingestion",
            subcategory="{center}",
        ),
    log:
        "results/logs/ingest/{center}.log",
    conda:
        "../../envs/imaging.yaml"
    threads: config["ingest"]["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        settings=get_ingest_settings,
    script:
        "../scripts/ingest.py"
