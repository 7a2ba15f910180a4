"""A model folder's identity (``model/identity.json``): what the applet and the report need
to use and describe a fitted model without the workflow.

- the model (name, family, information set) and the code that fitted it (version, commit);
- the training centers (name, synthetic or a hospital's files, patients, events) and whether
  any is synthetic;
- the settings of the stages before it (ingest, liver, tumor, features), so that a new
  patient goes through the same ingestion, liver segmentation, tumor handling and crop;
- the split file its out-of-fold risks came from (``splits.tsv``, a copy, with its sha256);
- for a model that reads radiomics features, the text of the pyradiomics parameters file
  they were extracted with (``radiomics_params``: text and sha256, as the features
  sidecars recorded it), since ``features.params`` is a path of the training run.

The risk-group thresholds come from ``oof.tsv`` beside it (the training centers' out-of-fold
risks and outcomes), as the statistics fix them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

IDENTITY_FILE = "identity.json"
SPLITS_FILE = "splits.tsv"
FORMAT_VERSION = 1


def training_summary(tables, centers: dict) -> list[dict]:
    from mtnet.tables import read_clinical

    out = []
    for path in tables:
        df = read_clinical(path)
        name = str(df["center"].iloc[0]) if len(df) else Path(path).parent.name
        mvi = df["mvi"].dropna() if "mvi" in df else []
        out.append({"center": name, "source": centers.get(name, {}).get("source"),
                    "n_patients": int(len(df)), "events": int(np.sum(mvi))})
    return out


def radiomics_params(feature_tables) -> dict:
    """The parameters file the training centers' features were extracted with: its text and
    sha256, read from the path their sidecars (``radiomics.json`` beside each table) name and
    checked against the sha256 they recorded."""
    import hashlib

    from mtnet.errors import InputError

    shas, source = set(), None
    for table in feature_tables:
        sidecar = Path(table).with_name("radiomics.json")
        if not sidecar.exists():
            raise InputError("features table without its sidecar", path=sidecar,
                             fix="re-run the features stage")
        info = json.loads(sidecar.read_text())
        shas.add(info["params_sha256"])
        source = source or info["params_path"]
    if len(shas) != 1:
        raise InputError("the training centers' features were extracted with different "
                         "radiomics parameters", fix="re-run the features stage of every center")
    sha = shas.pop()
    data = Path(source).read_bytes() if Path(source).is_file() else b""
    if hashlib.sha256(data).hexdigest() != sha:
        raise InputError("the radiomics parameters file changed since the features were "
                         "extracted", path=source, fix="re-run the features stage")
    return {"sha256": sha, "text": data.decode()}


def keep_splits(split_file, folder) -> dict:
    """A copy of the workflow's one split file in the model folder (``SPLITS_FILE``): which
    fold each training patient's out-of-fold risk came from, with the model it describes
    (the workflow's file is rewritten when the training tables change)."""
    import hashlib

    from mtnet.model.splits import read_folds

    folds = read_folds(split_file)  # refuses a file that is no split file
    data = Path(split_file).read_bytes()
    (Path(folder) / SPLITS_FILE).write_bytes(data)
    return {"file": SPLITS_FILE, "sha256": hashlib.sha256(data).hexdigest(),
            "folds": int(folds["fold"].nunique()), "patients": int(len(folds))}


def write_identity(spec, folder, inputs: dict, stage_settings: dict, centers: dict) -> dict:
    """Write ``folder/identity.json`` after the family has fitted the model into ``folder``."""
    from mtnet.provenance import code_identity

    folder = Path(folder)
    train = training_summary(list(inputs["clinical"]), centers)
    record = {
        "format_version": FORMAT_VERSION,
        "model": spec.name,
        "family": spec.family,
        "information": spec.information,
        "description": spec.description,
        "code": code_identity(),
        # no wall-clock time: a rerun or a resumed run writes the same bytes (the applet
        # shows the file's modification time as "trained")
        "training_centers": train,
        "synthetic": any(c["source"] == "synthetic" for c in train),
        "settings": stage_settings,
    }
    if inputs.get("features"):
        record["radiomics_params"] = radiomics_params(list(inputs["features"]))
    if inputs.get("splits"):
        record["splits"] = keep_splits(inputs["splits"], folder)
    (folder / IDENTITY_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def read_identity(folder) -> dict:
    from mtnet.errors import InputError

    path = Path(folder) / IDENTITY_FILE
    if not path.exists():
        raise InputError("not a model folder of this pipeline (no identity.json)", path=folder,
                         fix="give results/models/<model>/model of a finished run")
    record = json.loads(path.read_text())
    if record.get("format_version") != FORMAT_VERSION:
        raise InputError(f"model folder format {record.get('format_version')} (this mtnet reads "
                         f"{FORMAT_VERSION})", path=path, fix="retrain the model with this version")
    return record
