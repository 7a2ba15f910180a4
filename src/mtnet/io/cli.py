"""``mtnet ingest``: ingest one center outside the workflow (a hospital checking its delivery)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="ingest one center's images, masks and clinical table into a folder",
        description="Run the workflow's ingestion of one center outside Snakemake: either a data "
        "folder described by its center.yaml, or a `source: files` center of a workflow config. "
        "Writes the files of docs/data_contracts.md (images/, tumor/, liver/, clinical.tsv, "
        "missing_columns.tsv, exclusions.tsv, qc.tsv, qc_montage.png) under --out.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="folder with a center.yaml (like results/synth/{center}/data)")
    src.add_argument("--config", type=Path, nargs="+", help="workflow config file(s); the center's entry is used")
    p.add_argument("--center", required=True, help="center name (used in messages and clinical.tsv)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--spacing", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help="finest output spacing in mm (default: the config's ingest.spacing_mm, "
                        "else 1.5); an axis the scanner sampled more coarsely keeps its spacing")
    p.add_argument("--upsample", action="store_true", default=None,
                   help="resample every axis to --spacing, also the coarser ones")
    p.add_argument("--unmatched", choices=["error", "exclude"])
    p.add_argument("--nonuniform-spacing", choices=["error", "resample"])
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mtnet.config import ConfigError, load_config
    from mtnet.errors import InputError
    from mtnet.io import ingest_center

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        if args.config:
            cfg = load_config(*args.config)
            if args.center not in cfg["centers"]:
                raise ConfigError(f"config: centers: no center {args.center!r}")
            entry = cfg["centers"][args.center]
            if entry["source"] != "files":
                raise ConfigError(f"config: centers.{args.center}: ingest needs source: files "
                                  f"(a synthetic center is read from its generated data folder: --data)")
            ingest, inputs = dict(cfg["ingest"]), {}
        else:
            entry, ingest, inputs = {}, {}, {"data": str(args.data)}
        for key, value in (("spacing_mm", args.spacing), ("unmatched", args.unmatched),
                           ("nonuniform_spacing", args.nonuniform_spacing),
                           ("upsample", args.upsample)):
            if value is not None:
                ingest[key] = list(value) if key == "spacing_mm" else value
        out = args.out
        outputs = {k: str(out / k) for k in ("images", "tumor", "liver")}
        outputs.update(clinical=str(out / "clinical.tsv"), qc=str(out / "qc.tsv"),
                       montage=str(out / "qc_montage.png"))
        ingest_center(args.center, inputs, outputs, {"center": entry, "ingest": ingest}, threads=args.threads)
    except (ConfigError, InputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"ingested center {args.center} into {out}")
    return 0
