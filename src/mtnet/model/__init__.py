"""Prediction models. Each writes results/predictions/{center}/{model}.tsv with the columns
of :data:`PREDICTION_COLUMNS` (docs/data_contracts.md, models -> statistics)."""

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
