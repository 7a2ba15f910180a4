"""The files of an MTnet model folder (docs/data_contracts.md), one home for their names:
written by :mod:`api` (a fitted network) and :mod:`family` (folds, ensemble), read by both,
and importable without torch."""

WEIGHTS, MODEL_JSON, LOG_TSV = "weights.pt", "model.json", "train_log.tsv"
STEPWISE_TSV, STEPWISE_STEPS_TSV = "stepwise.tsv", "stepwise_steps.tsv"
ENCODING_JSON = "encoding.json"
HELDOUT_TSV = "heldout.tsv"
