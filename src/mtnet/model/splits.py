"""The workflow's one split file, and the stratified inner splits every model tunes on.

``results/splits/folds.tsv`` (rule ``splits``) assigns each training patient to one of k
folds; every model's out-of-fold predictions (split ``oof``) come from these folds, so that
paired comparisons on the training centers compare like with like. Folds are stratified by
center and outcome: within each center the events and the non-events are shuffled (a seed
per center, so adding a center moves no other's patients) and dealt to the folds in turn,
the non-events continuing where the events stopped, so every fold holds its share of each
center's events.
"""

from __future__ import annotations

import numpy as np

from mtnet.errors import InputError
from mtnet.seeds import rng

FOLD_COLUMNS = ["center", "patient_id", "mvi", "fold"]


def _deal(n_items: int, k: int, start: int) -> np.ndarray:
    return (start + np.arange(n_items)) % k


def stratified_folds(y, strata, k: int, seed: int, *names) -> np.ndarray:
    """Fold (0..k-1) of every sample, stratified by ``strata`` and the 0/1 outcome ``y``."""
    y = np.asarray(y, int)
    strata = np.asarray(strata, object)
    fold = np.empty(len(y), int)
    for stratum in sorted(set(strata.tolist()), key=str):
        start = 0
        for outcome in (1, 0):
            idx = np.flatnonzero((strata == stratum) & (y == outcome))
            idx = idx[rng(seed, "folds", *names, stratum, outcome).permutation(len(idx))]
            fold[idx] = _deal(len(idx), k, start)
            start = (start + len(idx)) % k
    return fold


def make_folds(table, k: int, seed: int):
    """The split file's rows: ``table`` (center, patient_id, mvi 0/1) with ``fold`` 1..k,
    sorted by center and patient. Within each center the patients, sorted by patient_id
    (so the row order does not matter), are shuffled per outcome and dealt as the module
    docstring says."""
    import pandas as pd

    missing = [c for c in ("center", "patient_id", "mvi") if c not in table.columns]
    if missing:
        raise InputError(f"the fold table lacks {missing}", fix="pass center, patient_id, mvi")
    if k < 2:
        raise InputError(f"k-fold needs k >= 2 (validation.folds = {k})", fix="set validation.folds to 2 or more")
    df = table[["center", "patient_id", "mvi"]].astype({"center": str, "patient_id": str})
    dup = df.duplicated(["center", "patient_id"])
    if dup.any():
        row = df[dup].iloc[0]
        raise InputError("patient listed twice", center=row["center"], patient=row["patient_id"])
    y = pd.to_numeric(df["mvi"], errors="coerce")
    bad = y.isna() | ~y.isin([0, 1])
    if bad.any():
        row = df[bad].iloc[0]
        raise InputError(f"mvi must be 0/1 for every training patient, got {row['mvi']!r}",
                         center=row["center"], patient=row["patient_id"], column="mvi",
                         fix="give every training patient an outcome")
    events = int(y.sum())
    if events < k or len(y) - events < k:
        raise InputError(f"{events} MVI event(s) and {len(y) - events} non-event(s) in the "
                         f"training centers: too few for {k} stratified folds",
                         fix="lower validation.folds or add training patients")
    out = df.assign(mvi=y.astype(int)).sort_values(["center", "patient_id"]).reset_index(drop=True)
    out["fold"] = stratified_folds(out["mvi"].to_numpy(), out["center"], k, seed) + 1
    return out[FOLD_COLUMNS]


def center_folds(table, centers):
    """Leave-one-center-out: the fold of each patient is its center's position (1-based) in
    ``centers``."""
    order = {c: i + 1 for i, c in enumerate(centers)}
    unknown = sorted(set(table["center"]) - set(order))
    if unknown:
        raise InputError(f"center(s) {unknown} not among {list(centers)}")
    out = table[["center", "patient_id", "mvi"]].copy()
    out["fold"] = out["center"].map(order).astype(int)
    return out.sort_values(["center", "patient_id"]).reset_index(drop=True)


def write_folds(tables, out_path, k: int, seed: int, scheme: str = "external", centers=None):
    """Rule ``splits``: the folds of the model centers' clinical tables (stratified k-fold;
    under ``leave-one-center-out`` one fold per center, in the order of ``centers``)."""
    from mtnet.tables import read_clinical_tables, write_tsv

    train = read_clinical_tables(tables)
    if scheme == "leave-one-center-out":
        folds = center_folds(train, centers or sorted(set(train["center"])))
    else:
        folds = make_folds(train, k, seed)
    write_tsv(folds[FOLD_COLUMNS], out_path)
    return folds


def read_folds(path):
    from mtnet.tables import read_tsv

    return read_tsv(path, required=FOLD_COLUMNS, what="split file")


def fold_of(folds, patients) -> np.ndarray:
    """The fold of each of ``patients`` (center, patient_id), in their order."""
    key = dict(zip(zip(folds["center"], folds["patient_id"]), folds["fold"]))
    missing = [(c, p) for c, p in zip(patients["center"], patients["patient_id"]) if (c, p) not in key]
    if missing:
        raise InputError("training patient absent from the split file", center=missing[0][0],
                         patient=missing[0][1], fix="re-run rule splits (the training tables changed)")
    return np.array([key[(c, p)] for c, p in zip(patients["center"], patients["patient_id"])])
