"""The R engine: one embedded R per process (rpy2), with ``engine.R`` sourced once.

R's start-up and ``library(Hmisc)`` cost seconds, so :func:`session` starts R on first use
and every later call reuses it. rpy2 3.5.17 quirks handled here: results are read from the
returned R list (assignment expressions return None), and R's console warnings go to the
Python logger instead of stderr.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
R_SOURCE = Path(__file__).with_name("engine.R")


@functools.lru_cache(maxsize=1)
def session():
    """The embedded R with mtnet's functions defined (started once per process)."""
    logging.getLogger("rpy2").setLevel(logging.WARNING)  # start-up chatter
    try:
        import rpy2.rinterface_lib.callbacks as callbacks
        import rpy2.robjects as ro

        callbacks.consolewrite_warnerror = lambda text: log.debug("R: %s", text.rstrip())
        ro.r["source"](str(R_SOURCE))
    except Exception as err:  # rpy2 missing, R missing, or an R package missing
        raise RuntimeError(
            f"the R statistics engine is unavailable ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]}); install R with pROC, Hmisc, rms and "
            f"survival, or set stats.engine: python"
        ) from err
    return ro


def _to_r(value):
    ro = session()
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind in "OUS":
            return ro.StrVector([str(v) for v in arr])
        return ro.FloatVector(arr.astype(float))
    if isinstance(value, str):
        return ro.StrVector([value])
    return ro.FloatVector([float(value)])


def _from_r(obj):
    from rpy2.robjects import vectors

    if isinstance(obj, vectors.StrVector):
        return [str(v) for v in obj]
    arr = np.asarray(obj, dtype=float)
    if obj.__class__.__name__ in ("BoolVector", "IntVector"):
        arr = np.where(np.asarray(obj) == np.iinfo(np.int32).min, np.nan, arr)
    return arr


def call(name: str, *args) -> dict:
    """Call R function ``name`` of engine.R; its named list comes back as a dict.

    An R error (data R refuses) becomes DegenerateInput, so an analysis gets an NA row
    with R's message as the reason instead of crashing the center. Length-1 numeric vectors
    become floats; longer ones NumPy arrays; NA becomes NaN.
    """
    from rpy2.rinterface_lib.embedded import RRuntimeError

    ro = session()
    try:
        result = ro.globalenv[name](*[_to_r(a) for a in args])
    except RRuntimeError as err:
        from mtnet.stats.results import DegenerateInput

        text = " ".join(str(err).split())
        log.warning("R error in %s: %s", name, text)
        raise DegenerateInput(f"R error in {name}: {text}") from None
    out = {}
    for key, value in zip(result.names, result):
        conv = _from_r(value)
        if isinstance(conv, np.ndarray) and conv.size == 1:
            conv = float(conv[0])
        out[key] = conv
    return out


def table(name: str, tab: np.ndarray) -> dict:
    """Call an engine.R test on a contingency table (a numeric matrix)."""
    ro = session()
    tab = np.asarray(tab, dtype=float)
    mat = ro.r["matrix"](ro.FloatVector(tab.ravel(order="F")), nrow=tab.shape[0])
    result = ro.globalenv[name](mat)
    return {k: float(np.asarray(v, dtype=float)[0]) for k, v in zip(result.names, result)}
