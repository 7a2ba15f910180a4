"""What the report reads: the workflow's TSVs (:mod:`mtnet.tables`), a synthetic center's
ceilings, the models' information sets (:mod:`mtnet.model.registry`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mtnet import tables
from mtnet.errors import InputError
from mtnet.model import registry
from mtnet.model.registry import INFORMATION_SETS

INFORMATION_SET_NAMES = INFORMATION_SETS


def read_tsv(path, columns=()) -> pd.DataFrame:
    """A workflow TSV (the pipeline's convention, :mod:`mtnet.tables`), checked for ``columns``."""
    return tables.read_tsv(path, required=tuple(columns), what="statistics table")


def frame(source, columns=()) -> pd.DataFrame:
    """A DataFrame as given, or read from a TSV path; checked for ``columns``."""
    if isinstance(source, pd.DataFrame):
        absent = [c for c in columns if c not in source.columns]
        if absent:
            raise InputError(f"missing column(s) {absent} in the table given")
        return source
    return read_tsv(source, columns)


def read_ceilings(source) -> dict:
    """A synthetic center's ``truth/ceilings.json`` (or its parsed dict): ``auc.clinical``,
    ``auc.image``, ``auc.both`` are the Bayes-optimal AUCs of the information sets."""
    if isinstance(source, dict):
        record, where = source, None
    else:
        where = Path(source)
        if not where.exists():
            raise InputError("ceilings file not found", path=where, fix="generate the cohort")
        record = json.loads(where.read_text())
    auc = record.get("auc", {})
    absent = [k for k in INFORMATION_SET_NAMES if k not in auc]
    if absent:
        raise InputError(f"ceilings lack auc.{', auc.'.join(absent)}", path=where)
    return record


def information_set(model: str, mapping=None) -> str | None:
    """``clinical``, ``image`` or ``both`` for a model: ``mapping``'s, else the registry's
    (None when unknown)."""
    if mapping is not None:
        return mapping.get(model)
    return registry.MODELS[model].information if model in registry.MODELS else None
