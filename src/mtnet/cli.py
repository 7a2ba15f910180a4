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
    "mtnet.cli:register_validity",
    "mtnet.app.cli:register",
    "mtnet.app.run:register",
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


def register_validity(subparsers) -> None:
    p = subparsers.add_parser(
        "validity",
        help="every model of a finished run against the synthetic cohort's known truth",
        description="For each synthetic external center of RESULTS and each model with "
        "predictions there: AUC [95%% CI], the Bayes ceiling of its information set, the paired "
        "gap to the true risk's AUC on the same patients (DeLong CI), and each fused model "
        "against each clinical-only one (src/mtnet/stats/validity.py).",
    )
    p.add_argument("results", type=Path, help="a results folder (with synth/, predictions/)")
    p.add_argument("--out", type=Path, help="write the table as TSV here")
    p.add_argument("--engine", choices=["python", "r"], default="python")
    p.set_defaults(func=_run_validity)


def _run_validity(args) -> int:
    from mtnet.errors import InputError
    from mtnet.stats.validity import format_table, validity_table

    try:
        table = validity_table(args.results, engine=args.engine)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if table.empty:
        print(f"error: {args.results}: no synthetic external center with predictions", file=sys.stderr)
        return 2
    if args.out:
        from mtnet.tables import write_tsv

        write_tsv(table, args.out)
    print(format_table(table))
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
    """Run a subcommand. An input error (a bad file, table, config) ends with one ``error: ...``
    line on stderr and exit status 2, never a traceback; a bug still shows its traceback."""
    from mtnet.config import ConfigError
    from mtnet.errors import InputError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (InputError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a path that cannot be read or written
        print(f"error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
