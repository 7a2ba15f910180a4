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


def test_the_model_folder_keeps_its_split_file(tmp_path):
    import hashlib

    from mtnet.model.splits import write_folds

    tables = [write_table(clinical_table("TA", 30, 1), tmp_path / "TA.tsv"),
              write_table(clinical_table("TB", 25, 2), tmp_path / "TB.tsv")]
    split_file = tmp_path / "splits" / "folds.tsv"
    split_file.parent.mkdir()
    write_folds(tables, split_file, 3, seed=7)
    folder = tmp_path / "model"
    folder.mkdir()
    stages = {k: section(k) for k in ("ingest", "liver", "tumor", "features")}
    rec = write_identity(registry.get("Model-Clinical-LR"), folder,
                         {"clinical": tables, "splits": split_file}, stages, {})
    kept = folder / rec["splits"]["file"]
    assert kept.name == "splits.tsv" and kept.read_bytes() == split_file.read_bytes()
    assert rec["splits"] == {"file": "splits.tsv", "folds": 3, "patients": 55,
                             "sha256": hashlib.sha256(split_file.read_bytes()).hexdigest()}
    # a file that is no split file is refused, naming it
    bad = tmp_path / "not_splits.tsv"
    bad.write_text("center\tpatient_id\nTA\tTA-001\n")
    with pytest.raises(InputError, match="split file"):
        write_identity(registry.get("Model-Clinical-LR"), folder,
                       {"clinical": tables, "splits": bad}, stages, {})


def test_foreign_or_old_folders_are_refused(tmp_path):
    with pytest.raises(InputError, match="not a model folder of this pipeline"):
        read_identity(tmp_path)
    (tmp_path / "identity.json").write_text(json.dumps({"format_version": 0}))
    with pytest.raises(InputError, match="model folder format 0.*retrain"):
        read_identity(tmp_path)
