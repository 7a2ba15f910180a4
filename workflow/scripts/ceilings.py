"""Adapter: rule ceilings -> mtnet.report.render.ceilings_page."""

from mtnet.report.render import ceilings_page
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    ceilings_page(
        smk.wildcards.center,
        discrimination=smk.input.discrimination,
        ceilings=list(smk.input.ceilings),
        output=smk.output[0],
        split=smk.params.split,
    )
