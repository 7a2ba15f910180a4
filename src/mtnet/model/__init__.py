"""Prediction models. Every model is an entry of :mod:`mtnet.model.registry`; each writes
results/predictions/{center}/{model}.tsv in the predictions contract of :mod:`mtnet.tables`
(docs/data_contracts.md, models -> statistics)."""
