"""Tables between stages: one TSV convention and the predictions contract.

Every TSV that crosses a stage is written by :func:`write_tsv` and read by :func:`read_tsv`:
tab-separated, a header, UTF-8, no index; a missing value is written ``NA``, and on reading
``NA`` is missing and nothing else is: an empty cell is the empty text (a ``reason`` with
nothing to say), and ``"None"``, ``"nan"`` or ``"N/A"`` stay text. Identifier columns
(``patient_id``, ``center``) are read as text, so ``007`` stays ``007``. docs/data_contracts.md describes each table.
"""

from __future__ import annotations

from pathlib import Path

from mtnet.errors import InputError

NA = "NA"
NA_VALUES = [NA]
TEXT_COLUMNS = ("patient_id", "center")

# models -> statistics: one row per patient (and split), in this order; extra columns after
PREDICTION_COLUMNS = [
    "patient_id",
    "center",
    "model",
    "risk",
    "mvi",
    "time_to_mvi_days",
    "death",
    "os_days",
    "split",
]
OPTIONAL_PREDICTION_COLUMNS = ["h_score"]
# apparent: training patients, in-sample; oof: training patients, out-of-fold; external
SPLITS = ("apparent", "oof", "external")
OUTCOME_COLUMNS = ["mvi", "time_to_mvi_days", "death", "os_days"]


def read_tsv(path, *, text_columns=TEXT_COLUMNS, dtype=None, required=(), what="table"):
    """A TSV of the pipeline as a DataFrame (see the module docstring for the conventions).

    ``required`` columns must be present (one-line error naming the file otherwise).
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found", path=path, fix="run the workflow step that writes it")
    types = {c: str for c in text_columns}
    types.update(dtype or {})
    df = pd.read_csv(path, sep="\t", dtype=types, na_values=NA_VALUES, keep_default_na=False)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{what} lacks column(s) {', '.join(missing)}", path=path,
                         fix="re-run the stage that writes it")
    return df


def write_tsv(df, path, **kwargs) -> None:
    """Write ``df`` with the pipeline's TSV convention (the parent folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, sep="\t", index=False, na_rep=NA, **kwargs)


def read_clinical(path):
    """A canonical clinical table of the ingest stage (one row per patient)."""
    df = read_tsv(path, required=("patient_id",), what="clinical table")
    dup = df["patient_id"].duplicated()
    if dup.any():
        raise InputError("duplicated patient_id", patient=df.loc[dup, "patient_id"].iloc[0],
                         path=path)
    return df


def read_clinical_tables(paths):
    """Several centers' clinical tables, stacked."""
    import pandas as pd

    frames = [read_clinical(p) for p in paths]
    if not frames:
        raise InputError("no clinical tables given")
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------ predictions


def prediction_frame(patients, model: str, risk, split, h_score=None):
    """Rows of the predictions contract from a clinical table's patients and their risks.

    ``patients`` carries patient_id, center and the outcome columns (absent ones become NA);
    ``split`` is one of :data:`SPLITS`, or a sequence of them, one per patient.
    """
    import numpy as np
    import pandas as pd

    splits = [split] * len(patients) if isinstance(split, str) else list(split)
    bad = sorted(set(splits) - set(SPLITS))
    if bad:
        raise ValueError(f"unknown split(s) {bad} (one of {', '.join(SPLITS)})")
    out = pd.DataFrame({"patient_id": patients["patient_id"].to_numpy(),
                        "center": patients["center"].to_numpy(), "model": model,
                        "risk": np.asarray(risk, float)})
    for col in OUTCOME_COLUMNS:
        values = (pd.to_numeric(patients[col], errors="coerce").to_numpy() if col in patients
                  else np.full(len(patients), np.nan))
        out[col] = pd.array(values, dtype="Int64") if col in ("mvi", "death") else values
    out["split"] = splits
    if h_score is not None:
        out["h_score"] = np.asarray(h_score, float)
    return out


def write_predictions(df, path) -> None:
    """Write predictions in the contract's column order (extra columns after)."""
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}")
    extra = [c for c in df.columns if c not in PREDICTION_COLUMNS]
    write_tsv(df[PREDICTION_COLUMNS + extra], path)


def read_predictions(paths, models, log=None) -> dict:
    """Prediction files -> {model: rows of every file}, only for the listed models.

    A file must carry the contract's columns and name the model it is named for; a patient
    may appear once per model and split.
    """
    import pandas as pd

    frames: dict[str, list] = {}
    for path in paths:
        path = Path(path)
        df = read_tsv(path, required=PREDICTION_COLUMNS, what="predictions file")
        named = set(df["model"].astype(str))
        if path.stem.startswith("Model-") and named != {path.stem}:
            raise InputError(f"the file is named for {path.stem} but its model column says "
                             f"{sorted(named)}", path=path, fix="rewrite the predictions")
        bad = sorted(set(df["split"].astype(str)) - set(SPLITS))
        if bad:
            raise InputError(f"unknown split(s) {bad} (one of {', '.join(SPLITS)})", path=path)
        for model, rows in df.groupby("model", sort=False):
            if model in models:
                frames.setdefault(model, []).append(rows)
    out = {}
    for model in models:
        if model not in frames:
            if log is not None:
                log.info("no predictions of %s among the inputs: its comparisons are skipped",
                         model)
            continue
        df = pd.concat(frames[model], ignore_index=True)
        dup = df.duplicated(["center", "patient_id", "split"])
        if dup.any():
            raise InputError(f"{model}: patient listed twice", center=df.loc[dup, "center"].iloc[0],
                             patient=df.loc[dup, "patient_id"].iloc[0])
        out[model] = df
    return out
