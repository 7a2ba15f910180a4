"""Where a result comes from: the code's version and git state, for model folders and the
run's manifest."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mtnet import __version__

PACKAGE_ROOT = Path(__file__).resolve().parent


def git_state(folder=PACKAGE_ROOT) -> dict:
    """The commit of the checkout holding ``folder`` and whether its tree differs from it
    (None outside a git checkout, e.g. an installed package)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=20)

    try:
        head = git("rev-parse", "HEAD")
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def code_identity() -> dict:
    return {"mtnet_version": __version__, **git_state()}
