"""Adapter: rule splits -> mtnet.model.splits.write_folds."""

from mtnet.model.splits import write_folds
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    write_folds(
        list(smk.input.tables),
        smk.output[0],
        k=smk.params.folds,
        seed=smk.params.seed,
        scheme=smk.params.scheme,
        centers=smk.params.centers,
    )
