"""Adapter: rule tumor_montage -> mtnet.report.render.tumor_montage."""

from mtnet.report.render import tumor_montage
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    tumor_montage(
        smk.wildcards.center,
        **dict(smk.input.items()),
        output=smk.output[0],
        synthetic=smk.params.synthetic,
    )
