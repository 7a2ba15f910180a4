"""Adapter: rule validity -> mtnet.stats.validity.write_validity."""

from mtnet.runlog import script_logging
from mtnet.stats.validity import write_validity

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    write_validity(smk.params.results, smk.output[0], models=smk.params.models, engine=smk.params.settings["engine"])
