rule delivery_manifest:
    """Every file of a synthetic center's delivery with its SHA-256 (a hospital's manifest is
    written while planning: common.smk, delivery_manifest)."""
    input:
        get_manifest_input,
    output:
        "results/ingest/{center}/delivery.sha256",
    log:
        "results/logs/delivery_manifest/{center}.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    params:
        paths=get_delivery_paths,
        cache=get_manifest_cache,
    script:
        "../scripts/delivery_manifest.py"


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
        fingerprints="results/ingest/{center}/fingerprints.tsv",
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


rule identity:
    """A center's patients against each other and every training center's: no image or
    clinical row twice (src/mtnet/io/identity.py)."""
    input:
        unpack(get_identity_input),
    output:
        "results/ingest/{center}/identity.tsv",
    log:
        "results/logs/identity/{center}.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    params:
        role=get_center_role,
        roles=get_identity_roles,
        settings=config["ingest"],
    script:
        "../scripts/identity.py"
