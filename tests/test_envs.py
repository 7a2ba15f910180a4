"""envs/*.yaml (conda environments per rule group) carry the same pins as requirements*.txt,
and every rule names one of them."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO

REQUIREMENT_FILES = ["requirements-torch.txt", "requirements.txt", "requirements-build.txt"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_pins() -> dict[str, str]:
    pins = {}
    for fname in REQUIREMENT_FILES:
        for line in (REPO / fname).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, sep, version = line.partition("==")
            assert sep, f"{fname}: '{line}' is not pinned with =="
            assert canonical(name) not in pins, f"{name} pinned twice"
            pins[canonical(name)] = version
    return pins


def env_pins(path):
    """(name, version, where) of every versioned Python package in a conda env file."""
    env = yaml.safe_load(path.read_text())
    out = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                name, sep, version = line.partition("==")
                assert sep, f"{path.name}: pip entry '{line}' is not pinned with =="
                out.append((canonical(name), version, "pip"))
        else:
            name, _, version = dep.partition("=")
            out.append((canonical(name), version.lstrip("="), "conda"))
    return out


ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


def test_there_are_env_files():
    assert {p.stem for p in ENV_FILES} >= {"imaging", "model", "stats", "workflow"}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_agree_with_requirements(path):
    pins = pip_pins()
    not_python = {"python", "pip"}
    for name, version, where in env_pins(path):
        if name in not_python or name.startswith("r-"):
            continue
        assert name in pins, f"{path.name}: {name} is not in requirements*.txt"
        assert version == pins[name], f"{path.name}: {name} {version} != requirements {pins[name]}"


def test_every_python_package_pin_is_exact():
    pins = pip_pins()
    assert pins["torch"] == "2.13.0"
    assert pins["rpy2"] == "3.5.17"  # 3.6.x fails against Debian 12's R 4.2.2
    assert pins["pyradiomics"] == "3.0.1"


def test_every_rule_names_a_conda_env():
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        rules = re.findall(r"^rule (\w+):", text, re.MULTILINE)
        envs = re.findall(r'conda:\n\s+"\.\./\.\./envs/(\w+)\.yaml"', text)
        assert len(envs) == len(rules), f"{smk.name}: {len(rules)} rules, {len(envs)} conda envs"
        for env in envs:
            assert (REPO / "envs" / f"{env}.yaml").exists()
