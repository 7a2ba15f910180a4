"""Adapter: rule table1_html -> mtnet.report.render.table1_page."""

from mtnet.report.render import table1_page
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    table1_page(smk.input[0], smk.output[0], synthetic=smk.params.synthetic, note=smk.params.note)
