"""Adapter: rule table1 -> mtnet.stats.table1.write_table1."""

from mtnet.runlog import script_logging
from mtnet.stats.table1 import write_table1

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    write_table1(
        train_tables=list(smk.input.train),
        external_tables=list(smk.input.external),
        external_centers=list(smk.params.external_centers),
        out_path=smk.output[0],
        engine=smk.params.settings["engine"],
    )
