"""Adapter: rule identity -> mtnet.io.identity.check_center."""

from mtnet.io.identity import check_center
from mtnet.runlog import script_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with script_logging(smk):
    roles = dict(smk.params.roles)
    check_center(
        smk.wildcards.center,
        smk.params.role,
        smk.input.own,
        {c: (roles[c], p) for c, p in zip(roles, smk.input.others)},
        smk.output[0],
        smk.params.settings,
    )
