"""MTnet's variants (paper §2.7) and size presets, as tables the model registry can read.

Pure Python at import (no torch): the model registry reads these tables cheaply.

A variant is a set of overrides of one :class:`~mtnet.model.mtnet.network.MTnetConfig`
(never a copy of the network); a size preset sets widths, depth, the crop grid and the
training schedule. :func:`resolve` merges preset, variant and the caller's settings.
"""

from __future__ import annotations

from dataclasses import fields

from mtnet.errors import InputError

# name -> overrides. ``seg_weight`` is lambda of the loss BCE + lambda (Dice + CE);
# ``stepwise``: the clinical block sees only the factors kept by backward stepwise logistic
# regression (mtnet.model.stepwise) on the training patients. ``information``: what the
# model sees (clinical | image | both; the registry's entries say the same and the registry
# is what the workflow and the statistics read); ``inputs``: what train/predict need.
VARIANTS: dict[str, dict] = {
    "Model-DR": {"image": True, "clinical": False, "segmentation": True,
                 "information": "image", "inputs": ("crops",)},
    "Model-CR": {"image": False, "clinical": True, "segmentation": False, "seg_weight": 0.0,
                 "information": "clinical", "inputs": ("clinical",)},
    "Model-CR-DR": {"image": True, "clinical": True, "segmentation": True,
                    "information": "both", "inputs": ("crops", "clinical")},
    "Model-NoSeg-CR-DR": {"image": True, "clinical": True, "segmentation": False,
                          "seg_weight": 0.0, "information": "both",
                          "inputs": ("crops", "clinical")},
    "Model-Logistic-CR-DR": {"image": True, "clinical": True, "segmentation": True,
                             "stepwise": True, "information": "both",
                             "inputs": ("crops", "clinical")},
}
STRUCTURE = ("image", "clinical", "segmentation", "stepwise")  # fixed by the variant
DESCRIPTIVE = ("information", "inputs")

# size -> settings. ``grid``: the crop grid (D, H, W) fed to the network (crops are resampled
# to it on load). Widths/depth: MTnetConfig; schedule: TrainConfig.
PRESETS: dict[str, dict] = {
    "tiny": {"grid": (16, 16, 16), "channels": (4, 8, 16), "num_res_units": 1,
             "clinical_hidden": (16, 8), "head_hidden": 8, "dropout": 0.1,
             "epochs": 8, "batch_size": 8, "learning_rate": 1e-2, "warmup_epochs": 1,
             "patience": 0, "min_epochs": 1},
    # the CPU size sees the lesion, not the liver box: at 24^3 a liver box puts ~8 mm in a
    # voxel and the traits vanish (docs/mtnet.md, "Field of view" and "The cpu size")
    "cpu": {"grid": (24, 24, 24), "channels": (8, 16, 32), "num_res_units": 1,
            "clinical_hidden": (32, 16), "head_hidden": 16, "dropout": 0.5,
            "epochs": 40, "batch_size": 8, "learning_rate": 3e-3, "warmup_epochs": 2,
            "patience": 10, "min_epochs": 15, "monitor": "inner_loss",
            "view": "tumor", "pooling": "stats", "norm": "batch", "feature_norm": True},
    "paper": {"grid": (96, 96, 96), "channels": (16, 32, 64, 128, 256), "num_res_units": 2,
              "clinical_hidden": (64, 32), "head_hidden": 64, "dropout": 0.3,
              "epochs": 150, "batch_size": 8, "learning_rate": 1e-3, "warmup_epochs": 5,
              "patience": 30, "min_epochs": 20},
}
DEFAULT_SIZE = "cpu"
# where each size is meant to run; every size runs on either (the code path is the same)
PRESET_DEVICE = {"tiny": "cpu", "cpu": "cpu", "paper": "cuda"}
# the functions the workflow calls, the same for every variant ("module:function")
ENTRY_POINTS = {"train": "mtnet.model.mtnet.api:train_mtnet",
                "predict": "mtnet.model.mtnet.api:predict_mtnet",
                "save": "mtnet.model.mtnet.api:save", "load": "mtnet.model.mtnet.api:load",
                "folds": "mtnet.model.splits:make_folds",
                "crops": "mtnet.model.mtnet.data:load_crops"}

# the field of view put on the grid (mtnet.model.mtnet.data.load_crops): the whole liver box
# the tumor stage cropped, or a cube around the target lesion cut from it, the lesion's
# longest extent plus ``view_margin_mm`` on every side (docs/mtnet.md, "Field of view")
VIEWS = ("liver", "tumor")
# settings that are neither MTnetConfig nor TrainConfig fields
EXTRA = {"size": DEFAULT_SIZE, "grid": None, "seg_weight": 1.0, "inner_fraction": 0.2,
         "p_remove": 0.10, "stepwise_test": "wald", "predict_batch_size": 8,
         "view": "liver", "view_margin_mm": 15.0}


def check_view(view: str, margin_mm) -> float:
    """The margin (mm) of a valid field of view; an unknown view or a negative margin is an
    :class:`~mtnet.errors.InputError`."""
    if view not in VIEWS:
        raise InputError(f"unknown MTnet view {view!r} (known: {', '.join(VIEWS)})",
                         fix="set view to liver or tumor")
    margin = float(margin_mm)
    if not margin >= 0:
        raise InputError(f"view_margin_mm must be >= 0, got {margin_mm}")
    return margin


def view_name(view: str, margin_mm: float) -> str:
    """How a crop set names its field of view (``liver``, ``tumor+15mm``)."""
    return view if view == "liver" else f"{view}+{float(margin_mm):g}mm"


def variant_names() -> list[str]:
    return list(VARIANTS)


def resolve(variant: str, settings: dict | None = None) -> dict:
    """Preset (``settings["size"]``) < variant < the caller's ``settings``, checked.

    Returns ``{"variant", "size", "grid", "network": {...MTnetConfig fields but
    n_factors}, "training": TrainConfig, "seg_weight", "inner_fraction", "stepwise",
    "p_remove", "stepwise_test", "predict_batch_size", "view", "view_margin_mm"}``. An
    unknown key, or a setting that would change what the variant is (image, clinical,
    segmentation, stepwise), is an :class:`~mtnet.errors.InputError`.
    """
    from mtnet.model.mtnet.network import MTnetConfig
    from mtnet.trainer import AugmentConfig, TrainConfig

    network_keys = {f.name for f in fields(MTnetConfig)} - {"n_factors"} - set(STRUCTURE)
    train_keys = {f.name for f in fields(TrainConfig)}
    if variant not in VARIANTS:
        raise InputError(f"unknown MTnet variant {variant!r} (known: {', '.join(VARIANTS)})",
                         fix="use one of the known variant names")
    settings = dict(settings or {})
    size = settings.pop("size", DEFAULT_SIZE)
    if size not in PRESETS:
        raise InputError(f"unknown MTnet size {size!r} (known: {', '.join(PRESETS)})",
                         fix="set size to tiny, cpu or paper")
    fixed = [k for k in settings if k in STRUCTURE + DESCRIPTIVE]
    if fixed:
        raise InputError(f"settings {fixed} are fixed by the variant {variant}",
                         fix="choose another variant instead")
    unknown = sorted(set(settings) - network_keys - train_keys - set(EXTRA))
    if unknown:
        raise InputError(f"unknown MTnet settings {unknown}",
                         fix=f"use keys of {sorted(network_keys | train_keys | set(EXTRA))}")
    spec = VARIANTS[variant]
    merged = {**EXTRA, **PRESETS[size],
              **{k: v for k, v in spec.items() if k not in DESCRIPTIVE}, **settings}
    if spec.get("seg_weight") == 0.0 and merged.get("seg_weight", 0.0) != 0.0:
        raise InputError(f"{variant} has no segmentation loss (seg_weight 0)",
                         fix="drop seg_weight from the settings")
    network = {k: merged[k] for k in network_keys if k in merged}
    network.update({k: merged[k] for k in ("image", "clinical", "segmentation")})
    augment = merged.get("augment", {})
    train = {k: merged[k] for k in train_keys if k in merged and k != "augment"}
    try:
        training = TrainConfig(**train, augment=augment if isinstance(augment, AugmentConfig)
                               else AugmentConfig(**augment))
    except (TypeError, ValueError) as err:
        raise InputError(f"MTnet training settings: {err}") from err
    grid = tuple(int(g) for g in merged["grid"])
    if len(grid) != 3:
        raise InputError(f"grid must have 3 sizes (D, H, W), got {merged['grid']}")
    margin = check_view(merged["view"], merged["view_margin_mm"])
    return {
        "variant": variant, "size": size, "grid": grid, "network": network,
        "training": training, "seg_weight": float(merged["seg_weight"]),
        "inner_fraction": float(merged["inner_fraction"]),
        "stepwise": bool(merged.get("stepwise", False)), "p_remove": float(merged["p_remove"]),
        "stepwise_test": merged["stepwise_test"],
        "predict_batch_size": int(merged["predict_batch_size"]),
        "view": merged["view"], "view_margin_mm": margin,
    }
