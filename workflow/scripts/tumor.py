"""Adapter: rule tumor -> mtnet.tumor.process_center."""

from mtnet.runlog import script_logging
from mtnet.tumor import process_center

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    process_center(
        smk.wildcards.center,
        inputs=dict(smk.input.items()),
        outputs=dict(smk.output.items()),
        settings=smk.params.settings,
        threads=smk.threads,
    )
