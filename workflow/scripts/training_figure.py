"""Adapter: rule training_figure -> mtnet.report.render.training_figure."""

from mtnet.report.render import training_figure
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    training_figure(
        smk.input.log,
        model=smk.wildcards.model,
        model_folder=smk.input.model,
        output=smk.output[0],
        synthetic=smk.params.synthetic,
    )
