"""Adapter: rule ceilings -> mtnet.report.render.ceilings_page."""

from pathlib import Path

from mtnet.report.render import ceilings_page
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    ceilings_page(
        smk.wildcards.center,
        discrimination=smk.input.discrimination,
        ceilings=[Path(t) / "ceilings.json" for t in smk.input.truth],
        output=smk.output[0],
        split=smk.params.split,
    )
