"""Adapter: rule train_model -> the model's family, through the registry."""

from mtnet.model import registry
from mtnet.model.identity import write_identity
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    spec = registry.get(smk.wildcards.model)
    spec.call(
        "train",
        inputs=dict(smk.input.items()),
        outputs=dict(smk.output.items()),
        settings=smk.params.settings,
        seed=smk.params.seed,
        threads=smk.threads,
    )
    write_identity(spec, smk.output.model, dict(smk.input.items()), smk.params.stages, smk.params.centers)
