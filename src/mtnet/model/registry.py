"""The model registry: each model name -> its implementation and what the workflow needs.

The one place that says which models exist. The config check (``models:`` may list only
registered names), the workflow's rules and targets (``workflow/rules/common.smk``), the
statistics' comparisons and the report all read it; adding a model is adding an entry
here, with its family's ``train`` / ``predict`` functions.

Entry points are ``"module:function"`` strings, imported only when called, so that reading
the registry costs nothing. A family's functions take the same arguments::

    train(model: ModelSpec, inputs: dict, outputs: dict, settings: dict, seed: int, threads: int)
    predict(model: ModelSpec, inputs: dict, output: str, center: str, role: str, settings: dict,
            threads: int)

``inputs`` holds what :attr:`ModelSpec.inputs` names (paths of the workflow: for training,
every training center's; for predicting, the one center's) and, for ``predict``, the
``model`` folder; ``outputs`` the training rule's outputs: ``model`` (a folder the family
fills), ``summary`` (a TSV for the report: coefficients, selected factors or features) and
``log`` (a TSV of the fit's path: a penalty's cross-validation, or a network's epochs).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

# what a model may need from the stages before it (common.smk resolves each to paths)
INPUT_KINDS = ("clinical", "roi", "features", "splits")
INFORMATION_SETS = ("clinical", "image", "both")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    ``information``: the information set it uses, for its Bayes ceiling on a synthetic
    center (clinical table only, image only, or both); ``needs_gpu``: trained on a GPU when
    there is one (the same job runs on the CPU otherwise); ``settings``: the config section
    its family reads (None: none); ``fold_jobs``: the family trains one job per fold of the
    split file (``train_fold``, rule ``train_network``: ``train_fold(model, inputs,
    fold_dir, fold, settings, seed, threads)``) and ``train`` assembles them;
    ``options``: the family's settings of this model.
    """

    name: str
    family: str
    information: str
    inputs: tuple
    train: str
    predict: str
    description: str
    needs_gpu: bool = False
    settings: str | None = None
    fold_jobs: bool = False
    train_fold: str | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.information not in INFORMATION_SETS:
            raise ValueError(f"{self.name}: information must be one of {INFORMATION_SETS}")
        unknown = set(self.inputs) - set(INPUT_KINDS)
        if unknown:
            raise ValueError(f"{self.name}: unknown input kind(s) {sorted(unknown)}")

    def call(self, which: str, *args, **kwargs):
        module, func = getattr(self, which).split(":")
        return getattr(importlib.import_module(module), func)(self, *args, **kwargs)


_CLINICAL_LR = "mtnet.model.clinical_lr"
_RADIOMICS = "mtnet.model.radiomics_lr"
_MTNET = "mtnet.model.mtnet.family"


def _mtnet(name: str, information: str, description: str, image: bool = True) -> ModelSpec:
    # the variants' structure (image, clinical block, decoder, stepwise screen) is in
    # mtnet.model.mtnet.variants; what the workflow needs of them is here
    return ModelSpec(
        name=name, family="mtnet", information=information,
        inputs=(("roi",) if image else ()) + ("clinical", "splits"),
        train=f"{_MTNET}:train_model", predict=f"{_MTNET}:predict_model",
        description=description, needs_gpu=True, settings="mtnet", fold_jobs=True,
        train_fold=f"{_MTNET}:train_fold",
    )

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        _mtnet("Model-CR-DR", "both", "MTnet: CT encoder with the tumor-segmentation decoder, "
               "clinical block and fusion head (the paper's best model)"),
        _mtnet("Model-NoSeg-CR-DR", "both", "MTnet without the segmentation decoder (lambda = 0)"),
        _mtnet("Model-Logistic-CR-DR", "both", "MTnet whose clinical block sees only the "
               "factors kept by backward stepwise logistic regression"),
        _mtnet("Model-CR", "clinical", "MTnet's clinical block and head (no image)", image=False),
        _mtnet("Model-DR", "image", "MTnet's image path with the segmentation decoder (no "
               "clinical factors)"),
        ModelSpec(
            name="Model-Clinical-LR",
            family="clinical_lr",
            information="clinical",
            inputs=("clinical", "splits"),
            train=f"{_CLINICAL_LR}:train_model",
            predict=f"{_CLINICAL_LR}:predict_model",
            description="L2-penalised multivariable logistic regression on the clinical and "
            "radiological factors (the conventional reference)",
            settings="clinical_lr",
        ),
        ModelSpec(
            name="Model-Radiomics",
            family="radiomics",
            information="image",
            inputs=("features", "clinical", "splits"),
            train=f"{_RADIOMICS}:train_model",
            predict=f"{_RADIOMICS}:predict_model",
            description="handcrafted radiomics (pyradiomics, lesion and ring; ComBat across "
            "centers) and an L1-penalised logistic regression",
            settings="features",
            options={"clinical": False},
        ),
        ModelSpec(
            name="Model-Radiomics-CR",
            family="radiomics",
            information="both",
            inputs=("features", "clinical", "splits"),
            train=f"{_RADIOMICS}:train_model",
            predict=f"{_RADIOMICS}:predict_model",
            description="Model-Radiomics plus the encoded clinical and radiological factors",
            settings="features",
            options={"clinical": True},
        ),
    ]
}
# The paper's best model, compared with every other model (Fu et al. 2021, section 3.2).
PRIMARY_MODEL = "Model-CR-DR"


class UnknownModel(ValueError):
    pass


def names() -> list[str]:
    return list(MODELS)


def get(name: str) -> ModelSpec:
    if name not in MODELS:
        raise UnknownModel(f"{name!r} has no implementation (implemented: {', '.join(MODELS)})")
    return MODELS[name]


def comparators(models) -> list[str]:
    """The models the primary model is compared with: every other one, in the given order
    (the config's ``models:``)."""
    return [m for m in models if m != PRIMARY_MODEL]


def best_model(models, chosen: str | None = None) -> str | None:
    """The model of the subgroup and risk-group analyses: ``chosen`` when it is among
    ``models``; unset, the primary model, else the first of ``models``."""
    if chosen:
        return chosen if chosen in models else None
    if PRIMARY_MODEL in models:
        return PRIMARY_MODEL
    return next(iter(models), None)
