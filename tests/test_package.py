"""The package's shape: imports run downward only, every import is a declared dependency,
and an installed package (not the checkout) validates a configuration."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from conftest import REPO

SRC = REPO / "src" / "mtnet"

# Lower layers first; a module may import its own component and anything ranked below it.
RANKS = {
    "mtnet": 0, "errors": 0, "seeds": 0,
    "tables": 1, "factors": 1, "imaging": 1, "registry": 1,
    "config": 2, "runlog": 2, "provenance": 2, "trainer": 2,
    "io": 3, "synth": 4, "liver": 5, "tumor": 6, "features": 7, "model": 8, "stats": 9,
    "report": 10, "app": 11, "cli": 12,
}
# needed at run time without being imported (see pyproject.toml)
INDIRECT = {"openpyxl", "pylibjpeg-openjpeg", "pyjpegls"}


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """mtnet modules imported anywhere in the file (function-level imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mtnet")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("mtnet"):
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found


def component(module: str) -> str:
    parts = module.split(".")
    if parts[:3] == ["mtnet", "model", "registry"]:
        return "registry"
    return parts[1] if len(parts) > 1 else "mtnet"


def test_imports_run_downward_only_and_form_no_cycle():
    mods = modules()
    graph = {m: imports(p, m, set(mods)) & set(mods) for m, p in mods.items()}
    upward = [
        f"{m} ({component(m)}) imports {d} ({component(d)})"
        for m, deps in graph.items() for d in deps
        if component(d) != component(m) and RANKS[component(d)] >= RANKS[component(m)]
    ]
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))
    assert {component(m) for m in mods} <= set(RANKS), "a new component needs a rank here"
    # cycles between modules (Tarjan's strongly connected components)
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def test_pyproject_names_every_package_the_code_imports():
    std = set(sys.stdlib_module_names)
    top = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top.add(node.module.split(".")[0])
    top -= std | {"mtnet"}
    dists = packages_distributions()
    imported = {_normal(dists[m][0]) for m in top}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {_normal(d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()) for d in declared}
    assert imported - names == set(), f"imported but not declared: {sorted(imported - names)}"
    assert names - imported <= INDIRECT, f"declared but never imported: {sorted(names - imported - INDIRECT)}"


def test_cli_help_does_not_import_the_heavy_stack():
    code = ("import sys; from mtnet import cli; cli.build_parser(); "
            "print(sorted(m for m in ('numpy', 'pandas', 'SimpleITK', 'pydicom', 'torch', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_an_installed_package_validates_a_config_outside_the_checkout(tmp_path):
    """pip install . into a fresh venv (its dependencies from this one), then `mtnet config`
    from a folder outside the checkout: the schema travels with the package."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies come from this venv, appended after the fresh venv's own packages
    (Path(site) / "deps.pth").write_text(ours + "\n")
    build = tmp_path / "build"  # the working tree's files as git sees them (no build leftovers)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "pyproject.toml", "README.md", "src"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (build / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, build / rel)
    # the wheel is built with this venv's setuptools, installed by the fresh venv's pip
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(build)], check=True)
    wheel = next((tmp_path / "dist").glob("mtnet_mvi-*.whl"))
    # --ignore-installed: the editable install of this checkout is visible through deps.pth
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", "--disable-pip-version-check",
                    str(wheel)], check=True)
    config = tmp_path / "elsewhere" / "my.yaml"
    config.parent.mkdir()
    config.write_text("seed: 1\ncenters:\n  A: {role: train, source: synthetic, synthetic: {preset: tiny}}\n"
                      "  B: {role: external, source: synthetic, synthetic: {preset: tiny}}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(py), "-c", "import mtnet.config as c; print(c.__file__, c.SCHEMA_PATH.exists())"],
                           cwd=config.parent, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(site) and where.stdout.strip().endswith("True"), where.stdout
    ok = subprocess.run([str(venv / "bin" / "mtnet"), "config", str(config)], cwd=config.parent, env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "valid:" in ok.stdout, ok.stderr
    config.write_text(config.read_text() + "models: [Model-Nonexistent]\n")
    bad = subprocess.run([str(venv / "bin" / "mtnet"), "config", str(config)], cwd=config.parent,
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "'Model-Nonexistent' has no implementation" in bad.stderr
