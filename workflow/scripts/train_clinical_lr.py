"""Adapter: rule train_clinical_lr -> mtnet.model.clinical_lr.fit_and_save."""

from mtnet.model.clinical_lr import fit_and_save
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    fit_and_save(
        list(smk.input.tables),
        model_path=smk.output.model,
        coefficients_path=smk.output.coefficients,
        seed=smk.params.seed,
    )
