"""`snakemake -n`: the default config plans per-center jobs for the paper's five centers, and
a sixth entry adds its own jobs with no code change."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from conftest import REPO, dry_run_jobs, run_snakemake
from mtnet.model import registry

DEFAULT = REPO / "config" / "config.yaml"
MODELS = yaml.safe_load(DEFAULT.read_text())["models"]
# one job per center (features: the radiomics models are in the default config's models)
PER_CENTER_RULES = {"ingest", "identity", "liver", "tumor", "features"}
# a synthetic center's data is generated, and its manifest written after it
SYNTHETIC_RULES = {"synth", "delivery_manifest"}
PAPER_CENTERS = ["YPH", "ZPH", "SPH", "NFH", "ZCPH"]


def plan(tmp_path, *configfiles):
    result = run_snakemake(["-n"], tmp_path, timeout=180, configfiles=[DEFAULT, *configfiles])
    assert result.returncode == 0, result.stderr[-3000:]
    return dry_run_jobs(result)


def centers_of(jobs, rule):
    return sorted(w["center"] for r, w in jobs if r == rule)


def predicted(jobs):
    """(center, model) of each predict_model job."""
    return sorted((w["center"], w["model"]) for r, w in jobs if r == "predict_model")


def every_model(centers):
    return sorted((c, m) for c in centers for m in MODELS)


def test_default_config_plans_per_center_jobs_for_the_five_centers(tmp_path):
    jobs = plan(tmp_path)
    for rule in PER_CENTER_RULES | SYNTHETIC_RULES:
        assert centers_of(jobs, rule) == sorted(PAPER_CENTERS), rule
    assert predicted(jobs) == every_model(PAPER_CENTERS)
    # statistics for the external center and for the pooled training centers
    assert centers_of(jobs, "stats") == ["ZCPH", "pooled_train", "pooled_train_apparent"]
    counts = Counter(r for r, _ in jobs)
    assert counts["train_model"] == len(MODELS) and counts["table1"] == 1 and counts["all"] == 1
    # one training job per MTnet variant and fold
    networks = [m for m in MODELS if registry.get(m).fold_jobs]
    folds = yaml.safe_load(DEFAULT.read_text()).get("validation", {}).get("folds", 5)
    assert counts["train_network"] == len(networks) * folds


def test_a_sixth_synthetic_center_adds_its_jobs(tmp_path):
    extra = tmp_path / "sixth.yaml"
    extra.write_text(yaml.safe_dump({"centers": {"GZH": {"role": "external", "source": "synthetic", "synthetic": {"preset": "demo"}}}}))
    before = plan(tmp_path)
    after = plan(tmp_path, extra)
    for rule in PER_CENTER_RULES | SYNTHETIC_RULES | {"stats"}:
        assert "GZH" in centers_of(after, rule), rule
        assert "GZH" not in centers_of(before, rule)
    added = Counter(r for r, _ in after) - Counter(r for r, _ in before)
    # its statistics, their figures and tables, its ceilings (synthetic) and tumor montage
    report = {"figures", "stats_tables", "ceilings", "tumor_montage"}
    want = Counter({r: 1 for r in PER_CENTER_RULES | SYNTHETIC_RULES | {"stats"} | report})
    want["predict_model"] = len(MODELS)  # each model predicts it; none is refitted
    assert added == want


def test_a_sixth_hospital_with_its_own_files_adds_its_jobs(tmp_path):
    hospital = tmp_path / "hospital"
    for name in ("ct", "seg"):
        (hospital / name).mkdir(parents=True)
    (hospital / "clinical.csv").write_text("patient_id\nH-1\n")
    extra = tmp_path / "sixth.yaml"
    extra.write_text(yaml.safe_dump({"centers": {"MYHOSP": {
        "role": "train", "source": "files",
        "images": str(hospital / "ct"), "image_format": "dicom",
        "tumor_masks": str(hospital / "seg"), "clinical": str(hospital / "clinical.csv"),
    }}}))
    jobs = plan(tmp_path, extra)
    for rule in PER_CENTER_RULES:
        assert "MYHOSP" in centers_of(jobs, rule), rule
    for rule in SYNTHETIC_RULES:  # its own data is read, not generated
        assert "MYHOSP" not in centers_of(jobs, rule)
    # its manifest was written while planning: every file of the delivery with its SHA-256
    manifest = (tmp_path / "results" / "ingest" / "MYHOSP" / "delivery.sha256").read_text()
    assert manifest.splitlines() == [
        "585af16ee2137db6a0c69301f954094f1f351726125bd68afbc478b612680ced  clinical/clinical.csv"]
    # a training center has no stats of its own: it joins the pooled training centers
    assert "MYHOSP" not in centers_of(jobs, "stats")


def test_tiny_config_replaces_the_default(tmp_path):
    result = run_snakemake(
        ["-n", "--replace-workflow-config"], tmp_path, timeout=180, configfiles=[REPO / "config" / "tiny.yaml"]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert centers_of(dry_run_jobs(result), "synth") == ["TA", "TB", "TX"]


@pytest.mark.parametrize("target", ["results/stats/pooled_train/discrimination.tsv"])
def test_pooled_statistics_read_every_training_center(tmp_path, target):
    result = run_snakemake(["-n", target], tmp_path, timeout=180, configfiles=[DEFAULT])
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = dry_run_jobs(result)
    assert predicted(jobs) == every_model(["YPH", "ZPH", "SPH", "NFH"])


def test_a_model_without_implementation_fails_planning_with_one_line(tmp_path):
    result = run_snakemake(["-n", "--config", 'models=["Model-Clinical-LR","Model-Nonexistent"]'],
                           tmp_path, timeout=120, configfiles=[DEFAULT])
    assert result.returncode != 0
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if "Model-Nonexistent" in ln]
    assert lines[0] == ("config: models: 'Model-Nonexistent' has no implementation "
                        f"(implemented: {', '.join(registry.MODELS)})"), lines


def test_leave_one_center_out_trains_on_every_center_and_evaluates_each(tmp_path):
    loco = tmp_path / "loco.yaml"
    loco.write_text("validation: {scheme: leave-one-center-out}\n")
    jobs = plan(tmp_path, loco)
    assert centers_of(jobs, "stats") == sorted(PAPER_CENTERS + ["pooled_loco"])
    assert predicted(jobs) == every_model(PAPER_CENTERS)
