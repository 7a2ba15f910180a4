"""Adapter: rule manifest -> mtnet.report.manifest.write_manifest."""

import snakemake as snakemake_package

from mtnet.report.manifest import write_manifest
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    write_manifest(
        smk.output.manifest,
        summary=smk.output.summary,
        config=smk.params.config,
        configfiles=list(smk.params.configfiles),
        inputs=dict(smk.params.inputs),
        snakemake_version=snakemake_package.__version__,
    )
