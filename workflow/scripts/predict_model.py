"""Adapter: rule predict_model -> the model's family, through the registry (a held-out
center under leave-one-center-out: its out-of-fold rows, whatever the family)."""

from pathlib import Path

from mtnet.model import registry
from mtnet.model.predictions import write_heldout_predictions
from mtnet.runlog import script_logging
from mtnet.tables import read_clinical

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    if smk.params.role == "held_out":
        write_heldout_predictions(
            read_clinical(smk.input.clinical),
            smk.wildcards.model,
            smk.wildcards.center,
            Path(smk.input.model) / "oof.tsv",
            smk.output[0],
        )
    else:
        registry.get(smk.wildcards.model).call(
            "predict",
            inputs=dict(smk.input.items()),
            output=smk.output[0],
            center=smk.wildcards.center,
            role=smk.params.role,
            settings=smk.params.settings,
            threads=smk.threads,
        )
