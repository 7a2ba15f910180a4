"""Adapter: rule train_liver_unet -> mtnet.liver.unet.train."""

from mtnet.liver.unet import train
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    train(
        images=list(smk.input.images),
        masks=list(smk.input.masks),
        model_path=smk.output.model,
        heldout_path=smk.output.heldout,
        settings=smk.params.settings,
        seed=smk.params.seed,
        threads=smk.threads,
    )
