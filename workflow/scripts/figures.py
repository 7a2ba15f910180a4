"""Adapter: rule figures -> mtnet.report.render.center_figures."""

from mtnet.report.render import center_figures
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    center_figures(
        smk.wildcards.center,
        inputs=dict(smk.input.items()),
        outputs=dict(smk.output.items()),
        synthetic=smk.params.synthetic,
        split=smk.params.split,
    )
