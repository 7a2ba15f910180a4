"""Adapter: rule train_network -> the model's family (one fold), through the registry."""

from mtnet.model import registry
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    registry.get(smk.wildcards.model).call(
        "train_fold",
        inputs=dict(smk.input.items()),
        fold_dir=smk.output[0],
        fold=int(smk.wildcards.fold),
        settings=smk.params.settings,
        seed=smk.params.seed,
        threads=smk.threads,
    )
