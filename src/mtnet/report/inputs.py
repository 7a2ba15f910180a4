"""What the report reads: the workflow's TSVs, a synthetic center's ceilings, the models'
information sets. Each is one small function so that the contracts being built on main
(``mtnet.tables.read_tsv``, ``mtnet.model.registry``) can replace its body."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mtnet.errors import InputError

# Information set of each model of the paper (what it sees): until mtnet.model.registry
# says so, this table does. Model-Clinical-LR and Model-CR read the clinical table only,
# Model-DR and Model-Radiomics the CT only, the combined models both.
INFORMATION_SETS = {
    "Model-Clinical-LR": "clinical",
    "Model-CR": "clinical",
    "Model-DR": "image",
    "Model-Radiomics": "image",
    "Model-CR-DR": "both",
    "Model-NoSeg-CR-DR": "both",
    "Model-Logistic-CR-DR": "both",
}
INFORMATION_SET_NAMES = ("clinical", "image", "both")


def read_tsv(path, columns=()) -> pd.DataFrame:
    """A workflow TSV (``NA`` = missing, empty text stays empty), checked for ``columns``."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path=path, fix="run the workflow step that writes it")
    df = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["NA"])
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise InputError(
            f"missing column(s) {absent}",
            path=path,
            fix="write the columns of docs/statistics.md",
        )
    return df


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
    """``clinical``, ``image`` or ``both`` for a model (None when unknown)."""
    table = INFORMATION_SETS if mapping is None else mapping
    return table.get(model)
