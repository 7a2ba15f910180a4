"""Adapter: rule predict_clinical_lr -> mtnet.model.clinical_lr.predict_table."""

from mtnet.model.clinical_lr import predict_table
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    predict_table(
        smk.input.model,
        smk.input.table,
        center=smk.wildcards.center,
        role=smk.params.role,
        out_path=smk.output[0],
    )
