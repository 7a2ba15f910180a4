"""Handcrafted radiomics: the ``features`` stage (between tumor and model).

:func:`extract_center` is what the workflow's ``features`` rule calls: pyradiomics features
of each patient's target lesion (mRECIST) and peritumoral ring on the ingested HU image,
with the parameters of ``config/radiomics.yaml``; it writes
``results/features/{center}/radiomics.tsv`` and its sidecar JSON (docs/radiomics.md).
:mod:`mtnet.features.combat` harmonises them across centers (ComBat, fitted on the
training centers); Model-Radiomics (``mtnet.model.radiomics_lr``) uses both.
"""

from mtnet.features.extract import (ID_COLUMNS, extract_center,
                                    extract_patient, read_features, target_lesion,
                                    wide_features)
from mtnet.features.params import REGIONS, make_extractor, params_sha256, validate_params

__all__ = [
    "ID_COLUMNS", "REGIONS", "extract_center", "extract_patient",
    "make_extractor", "params_sha256", "read_features", "target_lesion", "validate_params",
    "wide_features",
]
