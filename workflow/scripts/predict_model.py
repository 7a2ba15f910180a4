"""Adapter: rule predict_model -> the model's family, through the registry."""

from mtnet.model import registry
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    registry.get(smk.wildcards.model).call(
        "predict",
        inputs=dict(smk.input.items()),
        output=smk.output[0],
        center=smk.wildcards.center,
        role=smk.params.role,
        settings=smk.params.settings,
        threads=smk.threads,
    )
