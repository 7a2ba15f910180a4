"""A model folder's identity (``model/identity.json``): what the applet and the report need
to use and describe a fitted model without the workflow.

- the model (name, family, information set) and the code that fitted it (version, commit);
- the training centers (name, synthetic or a hospital's files, patients, events) and whether
  any is synthetic;
- the settings of the stages before it (ingest, liver, tumor, features), so that a new
  patient goes through the same ingestion, liver segmentation, tumor handling and crop.

The risk-group thresholds come from ``oof.tsv`` beside it (the training centers' out-of-fold
risks and outcomes), as the statistics fix them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

IDENTITY_FILE = "identity.json"
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
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_centers": train,
        "synthetic": any(c["source"] == "synthetic" for c in train),
        "settings": stage_settings,
    }
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
