"""Adapter: rule delivery_manifest -> mtnet.io.manifest.refresh."""

from mtnet.io.manifest import refresh
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    refresh(dict(smk.params.paths), smk.output[0], smk.params.cache)
