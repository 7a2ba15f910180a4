"""Adapter: rule synth -> mtnet.synth.write_center."""

from mtnet.runlog import script_logging
from mtnet.synth import write_center

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    write_center(
        smk.params.settings,
        seed=smk.params.seed,
        data_dir=smk.output.data,
        truth_dir=smk.output.truth,
    )
