"""A center's predictions in the contract, shared by every model family: ``external`` rows
for an external center; for a training center, the fitted model's ``apparent`` rows and the
``oof`` rows its training step wrote (``model/oof.tsv``: center, patient_id, mvi, fold, risk
and, for a network, h_score; the outcome travels with the risks so that thresholds can be
fixed on them without the clinical tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtnet.errors import InputError
from mtnet.tables import prediction_frame, read_tsv, write_predictions

OOF_COLUMNS = ["center", "patient_id", "mvi", "fold", "risk"]
ROLE_SPLIT = {"train": "apparent", "external": "external"}


def write_center_predictions(patients: pd.DataFrame, model: str, risk, center: str, role: str,
                             out_path, oof_path=None, h_score=None, oof_h_score=None) -> pd.DataFrame:
    """Write one center's rows; ``patients`` (its clinical table) give IDs and outcomes."""
    if role not in ROLE_SPLIT:
        raise InputError(f"unknown role {role!r} (train or external)", center=center)
    patients = patients.assign(center=center)
    out = prediction_frame(patients, model, risk, ROLE_SPLIT[role], h_score)
    if role == "train" and oof_path is not None:
        oof = read_tsv(oof_path, required=OOF_COLUMNS, what="out-of-fold risks")
        cols = ["patient_id", "risk"] + (["h_score"] if "h_score" in oof else [])
        mine = patients.drop(columns=[c for c in cols if c != "patient_id" and c in patients]).merge(
            oof[oof["center"] == center][cols], on="patient_id", how="left")
        if mine["risk"].isna().any():
            pid = mine.loc[mine["risk"].isna(), "patient_id"].iloc[0]
            raise InputError("training patient without an out-of-fold risk", center=center,
                             patient=pid, path=oof_path, fix="re-run rule train_model")
        rows = prediction_frame(mine, model, mine["risk"], "oof",
                                mine["h_score"] if "h_score" in mine else None)
        out = pd.concat([out, rows], ignore_index=True)
    write_predictions(out, out_path)
    return out


def write_heldout_predictions(patients: pd.DataFrame, model: str, center: str, oof_path,
                              out_path) -> pd.DataFrame:
    """Leave-one-center-out: a center's rows are its out-of-fold risks (its fold is the
    center: the models that predicted it never saw it), written as split ``external``."""
    oof = read_tsv(oof_path, required=OOF_COLUMNS, what="out-of-fold risks")
    mine = oof[oof["center"] == center]
    cols = ["patient_id", "risk"] + (["h_score"] if "h_score" in oof else [])
    rows = patients.assign(center=center).drop(columns=[c for c in cols[1:] if c in patients])
    rows = rows.merge(mine[cols], on="patient_id", how="left")
    if rows["risk"].isna().any():
        pid = rows.loc[rows["risk"].isna(), "patient_id"].iloc[0]
        raise InputError("patient without a held-out risk", center=center, patient=pid,
                         path=oof_path, fix="re-run rule train_model")
    out = prediction_frame(rows, model, rows["risk"], "external",
                           rows["h_score"] if "h_score" in rows else None)
    write_predictions(out, out_path)
    return out


def oof_frame(patients: pd.DataFrame, fold, risk, h_score=None) -> pd.DataFrame:
    """The rows of ``model/oof.tsv`` (``patients``: center, patient_id, mvi)."""
    out = pd.DataFrame({"center": patients["center"].to_numpy(),
                        "patient_id": patients["patient_id"].to_numpy(),
                        "mvi": pd.to_numeric(patients["mvi"], errors="coerce").astype("Int64").to_numpy(),
                        "fold": np.asarray(fold, int), "risk": np.asarray(risk, float)})
    if h_score is not None:
        out["h_score"] = np.asarray(h_score, float)
    return out
