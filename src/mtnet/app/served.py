"""A model folder as the applet serves it: checked, with its risk-group thresholds.

:func:`load_model` refuses, with one line, a folder that is not a model folder of this
pipeline, whose identity has another format version, whose model this mtnet does not
implement (or implements with another family), or that lacks what a new patient needs
(the out-of-fold risks that fix the thresholds; the radiomics parameters of a radiomics
model; the liver UNet of the ``unet`` liver backend).

Thresholds are those of the statistics (docs/statistics.md): the risk group is high when
the risk exceeds Youden's threshold on the training centers' out-of-fold risks
(``oof.tsv``, :func:`mtnet.stats.api.youden_threshold`, Python engine: it equals pROC's);
the H-score group, where the model writes an H-score, splits at the training median of the
out-of-fold H-scores.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mtnet.errors import InputError

log = logging.getLogger(__name__)

OOF_FILE = "oof.tsv"
# the liver UNet of a run, relative to its results/ folder (docs/data_contracts.md)
LIVER_UNET = Path("liver") / "unet" / "model.pt"


@dataclass
class ServedModel:
    """A loaded model folder. ``factors``: the canonical clinical columns a patient must give
    (the model's encoding); ``combat_batches``: the training centers whose ComBat parameters
    the model holds (None: no ComBat), a new center being harmonised from its own patients."""

    folder: Path
    identity: dict
    spec: object
    threshold: float
    sensitivity: float
    specificity: float
    h_score_median: float | None
    factors: list
    liver_backend: str
    liver_model: Path | None
    combat_batches: list | None
    radiomics_params: str | None

    @property
    def name(self) -> str:
        return self.identity["model"]

    @property
    def synthetic(self) -> bool:
        return bool(self.identity.get("synthetic"))

    @property
    def training_centers(self) -> list[dict]:
        return list(self.identity.get("training_centers") or [])

    @property
    def commit(self) -> str:
        code = self.identity.get("code") or {}
        commit = code.get("commit") or "unknown (not a git checkout)"
        return commit + (" (uncommitted changes)" if code.get("dirty") else "")

    def stage_settings(self, stage: str) -> dict:
        return dict((self.identity.get("settings") or {}).get(stage) or {})

    @property
    def trained(self) -> str:
        """When the model was trained: identity.json's modification time (UTC), since the
        file itself holds no time (two runs write the same bytes)."""
        from datetime import datetime, timezone

        from mtnet.model.identity import IDENTITY_FILE

        mtime = (self.folder / IDENTITY_FILE).stat().st_mtime
        return datetime.fromtimestamp(mtime, timezone.utc).isoformat(timespec="seconds")

    def describe(self) -> dict:
        """The identity shown with every result (name, training centers, code, synthetic)."""
        return {
            "model": self.name,
            "description": self.identity.get("description", ""),
            "training_centers": [
                {k: c.get(k) for k in ("center", "source", "n_patients", "events")}
                for c in self.training_centers],
            "mtnet_version": (self.identity.get("code") or {}).get("mtnet_version"),
            "commit": self.commit,
            "created": self.trained,
            "synthetic": self.synthetic,
            "youden_threshold": self.threshold,
            "h_score_median": self.h_score_median,
            "liver_backend": self.liver_backend,
        }

    def needs_batch_of_own_patients(self, center: str) -> bool:
        """True when ComBat must estimate ``center``'s batch effect from its own patients."""
        return self.combat_batches is not None and center not in self.combat_batches


def model_folder(path) -> Path:
    """The model folder (``results/models/<model>/model``) of ``path``, which may also be
    ``results/models/<model>``."""
    from mtnet.model.identity import IDENTITY_FILE

    path = Path(path)
    if not path.is_dir():
        raise InputError("model folder not found", path=path,
                         fix="give results/models/<model> of a finished workflow run")
    if not (path / IDENTITY_FILE).exists() and (path / "model" / IDENTITY_FILE).exists():
        return path / "model"
    return path


def needed_factors(folder: Path, spec) -> list[str]:
    """The canonical columns a new patient must give: none for an image-only model; else the
    ``factors`` the family listed in ``model.json`` (MTnet: those its fold encodings read),
    or the columns of the encoding it saved there (every model factor when neither)."""
    from mtnet.factors import MODEL_FACTORS, Encoding

    if spec.information == "image":
        return []
    path = folder / "model.json"
    if path.exists():
        meta = json.loads(path.read_text())
        if meta.get("factors") is not None:
            return list(meta["factors"])
        if meta.get("encoding") is not None:
            return Encoding.from_dict(meta["encoding"]).columns
    return list(MODEL_FACTORS)


def combat_batches(folder: Path) -> list | None:
    """The training batches of the ComBat a radiomics model saved (None: no ComBat)."""
    path = folder / "model.json"
    if not path.exists():
        return None
    combat = json.loads(path.read_text()).get("combat")
    return None if combat is None else sorted(combat.get("gamma", {}))


def _thresholds(folder: Path, name: str):
    import numpy as np
    import pandas as pd

    from mtnet.model.predictions import OOF_COLUMNS
    from mtnet.stats.api import DegenerateInput, youden_threshold
    from mtnet.tables import read_tsv

    path = folder / OOF_FILE
    if not path.exists():
        raise InputError("the model folder has no out-of-fold risks (oof.tsv), so no risk-group "
                         "threshold", path=folder, fix="retrain the model with this version")
    oof = read_tsv(path, required=OOF_COLUMNS, what="out-of-fold risks")
    known = oof[pd.to_numeric(oof["mvi"], errors="coerce").notna()]
    try:
        youden = youden_threshold(known["mvi"].astype(float), known["risk"].astype(float),
                                  engine="python")
    except DegenerateInput as err:
        raise InputError(f"no Youden threshold on the training centers' out-of-fold risks: {err}",
                         path=path, fix="retrain on training centers with events and non-events"
                         ) from None
    median = None
    if "h_score" in oof and oof["h_score"].notna().any():
        median = float(np.nanmedian(oof["h_score"].astype(float)))
    log.info("%s: Youden threshold %.4f on %d out-of-fold risks", name, youden.threshold, len(known))
    return youden, median


def _liver(identity: dict, folder: Path, liver_model) -> tuple[str, Path | None]:
    """The liver backend a new patient gets (a delivery without liver masks gets the
    recorded ``liver.default_backend``, as in the workflow) and the UNet it needs."""
    backend = ((identity.get("settings") or {}).get("liver") or {}).get("default_backend",
                                                                         "classical")
    if backend != "unet":
        return backend, None
    if liver_model:
        candidates = [Path(liver_model)]
    else:  # results/models/<model>/model -> results/liver/unet/model.pt
        candidates = [folder.parents[2] / LIVER_UNET] if len(folder.parents) > 2 else []
    for path in candidates:
        if path.is_file():
            return backend, path
    where = candidates[0] if candidates else folder
    raise InputError("the model's liver backend is 'unet' and its liver UNet is not found",
                     path=where, fix="give --liver-model results/liver/unet/model.pt of the run "
                     "that trained the model")


def load_model(path, liver_model=None) -> ServedModel:
    """Check and load a model folder (see the module docstring for what is refused)."""
    from mtnet.model import registry
    from mtnet.model.identity import read_identity

    folder = model_folder(path)
    identity = read_identity(folder)
    name = identity.get("model")
    try:
        spec = registry.get(name)
    except registry.UnknownModel:
        raise InputError(f"the folder holds {name!r}, which this mtnet does not implement "
                         f"(implemented: {', '.join(registry.names())})", path=folder,
                         fix="serve it with the mtnet version that trained it") from None
    if identity.get("family") != spec.family:
        raise InputError(f"the folder's {name} was fitted by family {identity.get('family')!r}, "
                         f"this mtnet's by {spec.family!r}", path=folder,
                         fix="retrain the model with this version")
    stages = ("ingest", "liver", "tumor") + (("features",) if "features" in spec.inputs else ())
    missing = [s for s in stages if s not in (identity.get("settings") or {})]
    if missing:
        raise InputError(f"the identity lacks the settings of {', '.join(missing)}", path=folder,
                         fix="retrain the model with this version")
    from mtnet.config import ConfigError, section

    for stage in stages:  # settings this mtnet's schema no longer accepts: another version
        try:
            section(stage, identity["settings"][stage])
        except ConfigError as err:
            raise InputError(f"the recorded {stage} settings do not fit this mtnet ({err})",
                             path=folder, fix="retrain the model with this version") from None
    params = None
    if "features" in spec.inputs:
        params = (identity.get("radiomics_params") or {}).get("text")
        if not params:
            raise InputError("the identity lacks the radiomics parameters the model was "
                             "extracted with", path=folder, fix="retrain the model with this version")
    youden, median = _thresholds(folder, name)
    backend, unet = _liver(identity, folder, liver_model)
    return ServedModel(folder=folder, identity=identity, spec=spec,
                       threshold=float(youden.threshold), sensitivity=float(youden.sensitivity),
                       specificity=float(youden.specificity), h_score_median=median,
                       factors=needed_factors(folder, spec), liver_backend=backend,
                       liver_model=unet, combat_batches=combat_batches(folder),
                       radiomics_params=params)
