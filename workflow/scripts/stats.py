"""Adapter: rule stats -> mtnet.stats.analyses.evaluate_center."""

from mtnet.runlog import script_logging
from mtnet.stats.analyses import evaluate_center

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    evaluate_center(
        smk.wildcards.center,
        predictions=list(smk.input.predictions),
        training_predictions=list(smk.input.training_predictions),
        tables=list(smk.input.tables),
        models=list(smk.params.models),
        outputs=dict(smk.output.items()),
        settings=smk.params.settings,
        split=smk.params.split,
        seed=smk.params.seed,
    )
