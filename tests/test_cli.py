"""The `mtnet` console command."""

from __future__ import annotations

import subprocess

from conftest import REPO, VENV_BIN, workflow_env


def mtnet(*args, cwd=REPO):
    return subprocess.run(
        [str(VENV_BIN / "mtnet"), *args], capture_output=True, text=True, cwd=cwd, env=workflow_env(), timeout=120
    )


def test_help_lists_subcommands():
    result = mtnet("--help")
    assert result.returncode == 0
    assert "config" in result.stdout
    assert "macrovascular invasion" in result.stdout


def test_config_validates_default_and_lists_centers():
    result = mtnet("config")
    assert result.returncode == 0, result.stderr
    for name in ("YPH", "ZPH", "SPH", "NFH", "ZCPH"):
        assert name in result.stdout


def test_config_reports_one_line_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\ncenters:\n  A: {role: train, source: synthetic, synthetic: {preset: demo}}\n")
    result = mtnet("config", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: config: centers: no external center (at least one needs role: external)"
