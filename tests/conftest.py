"""Shared test helpers: the repository, the real data in ../shared/data, Snakemake runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
VENV_BIN = Path(sys.executable).parent
# Real public data lives beside the checkout (never copied into the repository).
SHARED_DATA = Path(os.environ.get("MTNET_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or a skip naming what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real data not available: {path} is absent (it lives in ../shared/data beside "
            f"a developer's checkout; set MTNET_SHARED_DATA to point elsewhere)"
        )
    return path


def workflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    return env


def run_snakemake(
    args: list[str], workdir: Path, timeout: float = 600, configfiles: list[Path] | None = None
) -> subprocess.CompletedProcess:
    """Run this checkout's workflow in ``workdir`` (results land there, not in the repo)."""
    cmd = [str(VENV_BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    cmd += args
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=workflow_env(), cwd=workdir
    )


_JOB = re.compile(r"^(?:localrule|rule) (\w+):\n(?P<body>(?:    .*\n)*)", re.MULTILINE)
_WILDCARDS = re.compile(r"^    wildcards: (.*)$", re.MULTILINE)


def dry_run_jobs(result: subprocess.CompletedProcess) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a ``snakemake -n`` run lists."""
    jobs = []
    for match in _JOB.finditer(result.stdout + "\n"):
        wc = _WILDCARDS.search(match.group("body"))
        wildcards = dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {}
        jobs.append((match.group(1), wildcards))
    return jobs


# `make test` runs the suite on two pytest-xdist workers, one module per worker at a time
# (`-n 2 --dist loadfile --no-loadscope-reorder`): the two longest modules go first, one to
# each worker, so that neither waits at the end for a long module started late (the tiny
# workflow's module, about 35 min beside the other worker; the Slurm module mostly waits on
# the queue).
LONGEST_FIRST = ("test_workflow_tiny.py", "test_slurm.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
