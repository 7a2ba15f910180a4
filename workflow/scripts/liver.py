"""Adapter: rule liver -> mtnet.liver.segment_center."""

from mtnet.liver import segment_center
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    segment_center(
        smk.wildcards.center,
        backend=smk.params.backend,
        inputs=dict(smk.input.items()),
        outputs=dict(smk.output.items()),
        settings=smk.params.settings,
        threads=smk.threads,
    )
