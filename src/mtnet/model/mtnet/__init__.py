"""MTnet (paper §2.7, Fig. 2): the multi-task network, its variants, the H-score.

Layout: ``network`` (the modules and the one model class), ``variants`` (the variants and
size presets: tables the model registry reads, importable without torch), ``hscore`` (the
image heterogeneity score), ``data`` (crops in, folds), ``api`` (train / predict / save /
load), ``files`` (a model folder's file names), ``family`` (the workflow's folds and
ensemble). The trainer shared with the liver UNet is :mod:`mtnet.trainer`.
docs/mtnet.md describes the whole.

Names are imported on first use, so that ``mtnet.model.mtnet.variants`` can be read
without loading torch and MONAI.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "api": ["FittedMTnet", "load", "predict_ensemble", "predict_mtnet", "save", "train_mtnet"],
    "data": ["load_crops", "resample_crops"],
    "hscore": ["HScoreReference", "raw_heterogeneity"],
    "network": ["MTnet", "MTnetConfig", "count_parameters"],
    "variants": ["PRESETS", "VARIANTS", "resolve", "variant_names"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
