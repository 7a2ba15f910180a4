"""Adapter: rule ingest -> mtnet.io.ingest_center."""

from mtnet.io import ingest_center
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    ingest_center(
        smk.wildcards.center,
        inputs=dict(smk.input.items()),
        outputs=dict(smk.output.items()),
        settings=smk.params.settings,
        threads=smk.threads,
    )
