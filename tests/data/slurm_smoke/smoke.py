"""The jobs of tests/data/slurm_smoke/Snakefile; each writes the Slurm job it ran in."""

import os
import sys
import time
from pathlib import Path

FLAKY_WAIT_S = 120


def slurm_job() -> str:
    return os.environ.get("SLURM_JOB_ID", "none")


def part(sm) -> None:
    Path(sm.output[0]).write_text(f"part {sm.wildcards.i} slurm_job={slurm_job()}\n")


def flaky(sm) -> None:
    """First attempt: a marker, then wait for the test's `scancel`; later attempts succeed."""
    with open("flaky.attempts", "a") as f:
        f.write(f"attempt slurm_job={slurm_job()}\n")
    marker = Path("flaky.started")
    if not marker.exists():
        marker.touch()
        time.sleep(FLAKY_WAIT_S)
        print(f"not cancelled within {FLAKY_WAIT_S} s", file=sys.stderr)
        raise SystemExit(1)
    Path(sm.output[0]).write_text("".join(Path(p).read_text() for p in sm.input))


def gather(sm) -> None:
    gpus = os.environ.get("SLURM_GPUS", "none")
    text = Path(sm.input[0]).read_text() + f"gpus={gpus} slurm_job={slurm_job()}\n"
    Path(sm.output[0]).write_text(text)


def broken(sm) -> None:
    print("broken on purpose", file=sys.stderr)
    raise SystemExit(3)


if __name__ == "__main__" or "snakemake" in globals():
    sm = snakemake  # noqa: F821 (injected by Snakemake's script directive)
    with open(sm.log[0], "w") as log:
        sys.stderr = log
        print(f"{sm.rule} in slurm_job={slurm_job()}", file=log, flush=True)
        globals()[sm.rule](sm)
        print("done", file=log)
