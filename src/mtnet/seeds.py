"""Deterministic seeds: every random step derives its own seed from the config's ``seed``."""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *parts: object) -> int:
    """A 32-bit seed from the master seed and the names of the step (center, patient, ...).

    Hash-based rather than ``seed + i`` so that adding a center or a patient never shifts
    the random streams of the others.
    """
    text = "\x1f".join([str(int(seed)), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def rng(seed: int, *parts: object) -> np.random.Generator:
    """A NumPy generator for the step named by ``parts``."""
    return np.random.default_rng(derive_seed(seed, *parts))
