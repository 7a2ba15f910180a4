"""Adapter: rule checklist -> mtnet.report.checklist.write_checklist."""

from mtnet.report.checklist import write_checklist
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    write_checklist(
        inputs={k: v for k, v in smk.input.items()},
        outputs=dict(smk.output.items()),
        config=smk.params.config,
        centers=list(smk.params.centers),
        eval_centers=list(smk.params.eval_centers),
        models=list(smk.params.models),
    )
