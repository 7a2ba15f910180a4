"""Logging for the workflow's scripts: everything goes to the rule's log file.

Usage in ``workflow/scripts/<step>.py``::

    from mtnet.runlog import script_logging
    with script_logging(snakemake) as log:
        ...

A failure is written to the log with its traceback and re-raised as a one-line error, so
Snakemake's summary names the problem and the log keeps the details.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from pathlib import Path

from mtnet.errors import InputError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def script_logging(smk, name: str = "mtnet"):
    log_files = list(getattr(smk, "log", []) or [])
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_files:
        Path(log_files[0]).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_files[0], mode="w"))
    root = logging.getLogger()
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(h)
    root.setLevel(logging.INFO)
    # noisy third-party loggers stay at warnings
    for noisy in ("matplotlib", "PIL", "highdicom", "pydicom", "radiomics"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger(name)
    try:
        yield log
    except InputError as err:
        log.error("%s", err)
        log.debug("%s", traceback.format_exc())
        raise SystemExit(f"error: {err}") from None
    except Exception:
        log.error("unexpected failure:\n%s", traceback.format_exc())
        raise
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
