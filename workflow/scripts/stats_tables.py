"""Adapter: rule stats_tables -> mtnet.report.render.center_tables."""

from mtnet.report.render import center_tables
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    center_tables(
        smk.wildcards.center,
        inputs=dict(smk.input.items()),
        outputs=dict(smk.output.items()),
        synthetic=smk.params.synthetic,
        note=smk.params.note,
        split=smk.params.split,
    )
