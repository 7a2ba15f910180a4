"""Config validation: every invalid entry fails with a one-line message naming the key,
both from Python and from `snakemake -n` (the way a user meets it)."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import REPO, run_snakemake
from mtnet.config import ConfigError, liver_backend, load_config, read_yaml, validate_config

DEFAULT = REPO / "config" / "config.yaml"


@pytest.fixture
def hospital(tmp_path):
    """A minimal on-disk hospital: folders and a table that exist."""
    for name in ("ct", "seg", "liver"):
        (tmp_path / name).mkdir()
    (tmp_path / "clinical.csv").write_text("patient_id\nH-1\n")
    return {
        "role": "external",
        "source": "files",
        "images": str(tmp_path / "ct"),
        "image_format": "dicom",
        "tumor_masks": str(tmp_path / "seg"),
        "clinical": str(tmp_path / "clinical.csv"),
    }


def default_config():
    return read_yaml(DEFAULT)


def test_default_config_is_valid_and_has_the_papers_five_centers():
    cfg = load_config(DEFAULT)
    assert list(cfg["centers"]) == ["YPH", "ZPH", "SPH", "NFH", "ZCPH"]
    assert [c["role"] for c in cfg["centers"].values()] == ["train"] * 4 + ["external"]
    # defaults of every stage are filled in
    assert cfg["ingest"]["unmatched"] == "exclude"
    assert cfg["tumor"]["hu_window"] == [-100, 240]
    assert cfg["stats"]["engine"] == "r"
    assert cfg["liver"]["unet"]["heldout_fraction"] == 0.2


def test_tiny_config_is_valid():
    cfg = load_config(REPO / "config" / "tiny.yaml")
    assert {c["synthetic"]["preset"] for c in cfg["centers"].values()} == {"tiny"}


def test_liver_backend_defaults():
    cfg = load_config(DEFAULT)
    assert liver_backend(cfg, "YPH") == "provided"  # synthetic training centers have masks
    assert liver_backend(cfg, "ZCPH") == cfg["liver"]["default_backend"]


def _with_center(name, entry):
    cfg = default_config()
    cfg["centers"][name] = entry
    return cfg


def _invalid_cases(hospital):
    """(name, config, expected fragments of the one-line message)."""
    no_train = default_config()
    for c in no_train["centers"].values():
        c["role"] = "external"
    no_external = default_config()
    no_external["centers"]["ZCPH"]["role"] = "train"
    missing_key = copy.deepcopy(hospital)
    del missing_key["images"]
    missing_path = dict(hospital, clinical="/nonexistent/clinical.csv")
    unknown_model = dict(default_config(), models=["Model-Clinical-LR", "Model-Nonexistent"])
    unet_typo = default_config()
    unet_typo.setdefault("liver", {})["unet"] = {"epoch": 3}
    return [
        ("unknown model", unknown_model,
         ["config: models: 'Model-Nonexistent' has no implementation", "implemented: ", "Model-Clinical-LR", "Model-CR-DR"]),
        ("unknown liver.unet key", unet_typo, ["liver.unet", "unknown key 'epoch'"]),
        ("unknown role", _with_center("H", dict(hospital, role="validation")),
         ["centers.H.role", "'validation' is not one of train, external"]),
        ("missing path key", _with_center("H", missing_key),
         ["centers.H", "missing required key 'images'"]),
        ("non-existent path", _with_center("H", missing_path),
         ["centers.H.clinical", "path does not exist", "/nonexistent/clinical.csv"]),
        ("duplicated center (case)", _with_center("yph", {"role": "train", "source": "synthetic", "synthetic": {"preset": "demo"}}),
         ["centers.yph", "duplicated center", "'YPH'"]),
        ("no training center", no_train, ["no training center"]),
        ("no external center", no_external, ["no external center"]),
        ("unknown preset", _with_center("H", {"role": "train", "source": "synthetic", "synthetic": {"preset": "huge"}}),
         ["centers.H.synthetic.preset", "'huge' is not one of tiny, demo, paper, benchmark"]),
        ("unknown key", _with_center("H", dict(hospital, imgaes="x")),
         ["centers.H", "unknown key 'imgaes'"]),
        ("synthetic with files", _with_center("H", {"role": "train", "source": "synthetic", "synthetic": {"preset": "demo"}, "images": hospital["images"]}),
         ["centers.H.images", "synthetic center takes no 'images'"]),
        ("bad center name", _with_center("pooled_train", {"role": "train", "source": "synthetic", "synthetic": {"preset": "demo"}}),
         ["centers", "invalid name 'pooled_train'"]),
    ]


CASE_NAMES = [c[0] for c in _invalid_cases({"images": "", "clinical": ""})]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_invalid_config_one_line_message(case, hospital, tmp_path):
    name, cfg, fragments = next(c for c in _invalid_cases(hospital) if c[0] == case)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, base_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_same_images_folder_twice_is_a_duplicated_center(hospital, tmp_path):
    cfg = _with_center("H", hospital)
    cfg["centers"]["H2"] = dict(hospital)
    with pytest.raises(ConfigError, match=r"centers\.H2\.images: duplicated center \(same images as centers\.H\)"):
        validate_config(cfg, base_dir=tmp_path)


def test_duplicated_yaml_key_names_file_and_line(tmp_path):
    text = DEFAULT.read_text().replace(
        "  ZCPH:\n", "  YPH:\n    role: train\n    source: synthetic\n    synthetic: {preset: demo}\n  ZCPH:\n"
    )
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"dup\.yaml: line \d+: duplicated key 'YPH' \(first at line \d+\)"):
        load_config(path)


def test_relative_paths_resolve_against_base_dir(hospital, tmp_path):
    rel = dict(hospital, images="ct", tumor_masks="seg", clinical="clinical.csv")
    validate_config(_with_center("H", rel), base_dir=tmp_path)
    with pytest.raises(ConfigError, match="centers.H.images: path does not exist"):
        validate_config(_with_center("H", rel), base_dir=tmp_path / "elsewhere")


# ---------------------------------------------------------------- through snakemake -n


@pytest.mark.parametrize("case", CASE_NAMES)
def test_snakemake_refuses_invalid_config(case, hospital, tmp_path):
    name, cfg, fragments = next(c for c in _invalid_cases(hospital) if c[0] == case)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = run_snakemake(["-n", "--replace-workflow-config"], tmp_path, timeout=120, configfiles=[path])
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ConfigError" in output
    for fragment in fragments:
        assert fragment in output, output[-2000:]


def test_snakemake_refuses_duplicated_yaml_key(tmp_path):
    text = DEFAULT.read_text().replace("  ZPH:\n", "  YPH:\n    role: train\n    source: synthetic\n    synthetic: {preset: demo}\n  ZPH:\n")
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    result = run_snakemake(["-n", "--replace-workflow-config"], tmp_path, timeout=120, configfiles=[path])
    assert result.returncode != 0
    assert "duplicated key 'YPH'" in result.stdout + result.stderr
