"""``mtnet synth``: write one synthetic centre to OUT/data and OUT/truth."""

from __future__ import annotations

import sys
from pathlib import Path

from mtnet.config import ROLES, schema_enum


def register(subparsers) -> None:
    """``mtnet synth``: write one synthetic centre to OUT/data and OUT/truth."""
    p = subparsers.add_parser(
        "synth",
        help="generate one synthetic centre (data/ like a hospital's delivery, truth/)",
        description="Write a synthetic centre of a preset to OUT/data and OUT/truth "
        "(docs/synthetic_cohort.md). Deterministic from (preset, centre, seed).",
    )
    p.add_argument("--preset", required=True, choices=schema_enum("synthetic", "preset"))
    p.add_argument("--center", required=True, help="centre name, e.g. YPH or TA")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--seed", type=int, default=20211028)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--n-patients", type=int)
    p.add_argument("--n-events", type=int)
    for key in ("image_format", "tumor_mask_format", "clinical_format"):
        p.add_argument(f"--{key.replace('_', '-')}", choices=schema_enum("synthetic", key))
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mtnet.errors import InputError
    from mtnet.synth.center import write_center

    settings = {"preset": args.preset, "center": args.center, "role": args.role}
    for key in ("n_patients", "n_events", "image_format", "tumor_mask_format", "clinical_format"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    try:
        truth = write_center(settings, args.seed, args.out / "data", args.out / "truth")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.center}: {len(truth)} patients, {int(truth['mvi'].sum())} events -> {args.out} (SYNTHETIC)")
    return 0
