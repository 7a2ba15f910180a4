"""The ``mtnet`` command. Each stage adds its subcommand through :data:`SUBCOMMANDS`.

A subcommand module exposes ``register(subparsers)``, which adds one parser whose
``func(args) -> int`` does the work. Modules are imported only when listed, so
``mtnet --help`` stays fast and a broken optional stage never hides the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from mtnet import __version__

# "module:function" of each subcommand's register(), in the order --help lists them
SUBCOMMANDS = [
    "mtnet.cli:register_config",
    "mtnet.synth.cli:register",
    "mtnet.io.cli:register",
    "mtnet.report.audit:register",
]


def register_config(subparsers) -> None:
    p = subparsers.add_parser(
        "config",
        help="validate a workflow configuration and list its centers",
        description="Validate config files exactly as the workflow does (later files win, "
        "as with snakemake --configfile) and list the centers by role.",
    )
    p.add_argument(
        "files",
        nargs="*",
        type=Path,
        default=[Path("config/config.yaml")],
        help="YAML config files (default: config/config.yaml)",
    )
    p.set_defaults(func=_run_config)


def _run_config(args) -> int:
    from mtnet.config import ConfigError, load_config

    try:
        cfg = load_config(*args.files)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"valid: {', '.join(map(str, args.files))} (seed {cfg['seed']})")
    for name, c in cfg["centers"].items():
        detail = c["synthetic"]["preset"] if c["source"] == "synthetic" else c["images"]
        print(f"  {name:<12} {c['role']:<9} {c['source']:<10} {detail}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtnet",
        description="MTnet-MVI: future macrovascular invasion in HCC from CT "
        "(after Fu et al., EClinicalMedicine 2021). The workflow itself runs with snakemake; "
        "these commands are its building blocks.",
    )
    parser.add_argument("--version", action="version", version=f"mtnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for spec in SUBCOMMANDS:
        module_name, func_name = spec.split(":")
        getattr(importlib.import_module(module_name), func_name)(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
