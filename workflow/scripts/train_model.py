"""Adapter: rule train_model -> the model's family, through the registry."""

from mtnet.model import registry
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    registry.get(smk.wildcards.model).call(
        "train",
        inputs=dict(smk.input.items()),
        outputs=dict(smk.output.items()),
        settings=smk.params.settings,
        seed=smk.params.seed,
        threads=smk.threads,
    )
