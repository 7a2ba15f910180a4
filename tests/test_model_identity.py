"""A model folder records what a new patient needs: the model, its training centers, the
code and the stages' settings; a folder of another format is refused."""

from __future__ import annotations

import json

import pytest

from mtnet.config import section
from mtnet.errors import InputError
from mtnet.model import registry
from mtnet.model.identity import read_identity, write_identity
from stats_synthetic import clinical_table, write_table


def test_identity_records_model_centers_code_and_settings(tmp_path):
    tables = [write_table(clinical_table("TA", 30, 1), tmp_path / "TA.tsv"),
              write_table(clinical_table("TB", 25, 2), tmp_path / "TB.tsv")]
    folder = tmp_path / "model"
    folder.mkdir()
    stages = {k: section(k) for k in ("ingest", "liver", "tumor", "features")}
    centers = {"TA": {"source": "synthetic"}, "TB": {"source": "files"}}
    rec = write_identity(registry.get("Model-Clinical-LR"), folder, {"clinical": tables}, stages, centers)
    back = read_identity(folder)
    assert back == json.loads(json.dumps(rec))
    assert back["model"] == "Model-Clinical-LR" and back["information"] == "clinical"
    assert [c["center"] for c in back["training_centers"]] == ["TA", "TB"]
    assert [c["n_patients"] for c in back["training_centers"]] == [30, 25]
    assert back["synthetic"] is True and back["settings"]["tumor"]["roi_grid"] == [96, 96, 96]
    assert len(back["code"]["commit"]) == 40


def test_foreign_or_old_folders_are_refused(tmp_path):
    with pytest.raises(InputError, match="not a model folder of this pipeline"):
        read_identity(tmp_path)
    (tmp_path / "identity.json").write_text(json.dumps({"format_version": 0}))
    with pytest.raises(InputError, match="model folder format 0.*retrain"):
        read_identity(tmp_path)
