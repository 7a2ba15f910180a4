"""Adapter: rule features -> mtnet.features.extract_center."""

from mtnet.features import extract_center
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    extract_center(
        smk.wildcards.center,
        images_dir=smk.input.images,
        tumor_dir=smk.input.tumor,
        rings_dir=smk.input.rings,
        lesions_tsv=smk.input.lesions,
        params_path=smk.input.params,
        out_tsv=smk.output.table,
        sidecar_path=smk.output.sidecar,
        threads=smk.threads,
    )
