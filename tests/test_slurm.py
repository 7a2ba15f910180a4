"""`snakemake --profile slurm` against a real single-node Slurm (tests/slurm_cluster.py).

The profile (slurm/config.yaml) is used as a user would use it, layered with
tests/data/slurm_test_profile (small CPU/memory requests for the 2-CPU test node, first status
check after 2 s). Jobs must really run under Slurm: each rule job has a Slurm job id that
slurmctld accepted, that Slurm's own record shows finished, and that the job itself saw.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import slurm_cluster
from conftest import REPO, VENV_BIN, dry_run_jobs, run_snakemake, workflow_env

PROFILE = REPO / "slurm"
TEST_PROFILE = REPO / "tests" / "data" / "slurm_test_profile"
SMOKE = REPO / "tests" / "data" / "slurm_smoke" / "Snakefile"
TINY = REPO / "config" / "tiny.yaml"
# rules the workflow runs on the submit host (Snakefile `localrules:`)
def _local_rules() -> set[str]:
    """The Snakefile's localrules (and rule all): run on the submit host, never submitted."""
    text = (REPO / "Snakefile").read_text()
    block = text.split("\nlocalrules:\n", 1)[1].split("\n\n", 1)[0]
    return {"all"} | {line.strip().rstrip(",") for line in block.splitlines() if line.strip()}


LOCAL_RULES = _local_rules()

_SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.")


# ------------------------------------------------------------------ the profile itself (no cluster)


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def test_profile_sets_the_slurm_executor_and_its_essentials():
    p = profile()
    assert p["executor"] == "slurm"
    assert p["slurm-status-command"] == "squeue"
    assert p["jobs"] >= 1 and p["retries"] >= 1 and p["latency-wait"] >= 5
    assert p["rerun-incomplete"] is True
    assert p["slurm-logdir"] == "results/logs/slurm"
    assert {"mem_mb", "runtime"} <= set(p["default-resources"])


def test_every_training_rule_asks_for_a_gpu():
    p = profile()
    rules = "\n".join(f.read_text() for f in (REPO / "workflow" / "rules").glob("*.smk"))
    # the deep-learning training rules (the liver UNet, the MTnet variants)
    training = set(re.findall(r"^rule (train_\w*(?:unet|mtnet|network)\w*):", rules, re.MULTILINE | re.IGNORECASE))
    assert "train_liver_unet" in training
    for rule in training:
        gpu = p["set-resources"].get(rule, {})
        assert gpu.get("gpu", 0) >= 1 or "gpu" in gpu.get("gres", ""), rule
        assert gpu.get("cpus_per_gpu", 0) >= 1 and gpu.get("mem_mb", 0) >= 8000, rule


def test_the_test_overlay_covers_every_set_resources_rule_of_the_profile():
    """The overlay replaces the profile's whole set-resources: it must repeat each rule."""
    overlay = yaml.safe_load((TEST_PROFILE / "config.yaml").read_text())
    assert set(profile()["set-resources"]) <= set(overlay["set-resources"])
    for rule, resources in overlay["set-resources"].items():
        assert resources.get("cpus_per_gpu", 1) <= 2 and resources.get("mem_mb", 0) <= 8000, rule


def test_profile_name_resolves_from_the_repository_root(tmp_path):
    """`snakemake --profile slurm` run in the checkout finds ./slurm (a dry run: no cluster)."""
    result = subprocess.run(
        [str(VENV_BIN / "snakemake"), "--profile", "slurm", "-d", str(tmp_path), "-n",
         "--configfile", str(TINY), "--replace-workflow-config", "results/liver/unet/model.pt"],
        cwd=REPO, capture_output=True, text=True, timeout=180, env=workflow_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Using profile slurm " in result.stdout + result.stderr
    unet = [line for line in result.stdout.splitlines() if "gpu=1" in line]
    assert unet and "cpus_per_gpu=8" in unet[0] and "mem_mb=32000" in unet[0], result.stdout[-2000:]


# ------------------------------------------------------------------ a real cluster


@pytest.fixture(scope="module")
def cluster():
    reason = slurm_cluster.unavailable()
    if reason:
        pytest.skip(reason)
    c = slurm_cluster.SlurmCluster()
    c.start()
    print(f"single-node Slurm up in {c.start_seconds:.2f} s ({c.cpus} CPUs, {c.memory_mb} MB)")
    yield c
    c.stop()


def slurm_snakemake(snakefile: Path, workdir: Path, args: list[str], timeout: int) -> subprocess.Popen:
    """`snakemake --profile <repo>/slurm --profile <test overlay>` under `timeout -k 10`."""
    cmd = ["timeout", "-k", "10", str(timeout), str(VENV_BIN / "snakemake"), "-s", str(snakefile),
           "-d", str(workdir), "--profile", str(PROFILE), "--profile", str(TEST_PROFILE), *args]
    return subprocess.Popen(cmd, cwd=workdir, env=workflow_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, timeout: int) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout + 30)
    assert proc.returncode not in (124, 137), f"snakemake hung (timeout):\n{out[-4000:]}"
    return proc.returncode, out


def submissions(log: str) -> dict[str, Path]:
    """Slurm job id -> its Slurm output file, from snakemake's log."""
    return {slurm_id: Path(path) for _, slurm_id, path in _SUBMITTED.findall(log)}


def job_rule(record: dict[str, str]) -> str:
    """The rule (and wildcards) of a Slurm job, from the comment the plugin gives it."""
    return record["comment"]


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"snakemake exited before {what}:\n{proc.communicate()[0][-4000:]}")
        time.sleep(0.3)
    proc.kill()
    pytest.fail(f"no {what} within {timeout} s")


def assert_ran_under_slurm(cluster, slurm_ids: set[str]) -> dict[str, dict[str, str]]:
    """slurmctld accepted every job, and its completion record has each one."""
    accepted = cluster.submitted_job_ids()
    assert slurm_ids <= accepted, f"not in slurmctld's log: {slurm_ids - accepted}"
    finished = cluster.finished_jobs()
    assert slurm_ids <= set(finished), f"no completion record: {slurm_ids - set(finished)}"
    return finished


@pytest.mark.slurm
@pytest.mark.slow
def test_smoke_workflow_runs_under_slurm_and_a_cancelled_job_is_retried(cluster, tmp_path):
    t0 = time.perf_counter()
    proc = slurm_snakemake(SMOKE, tmp_path, [], timeout=300)

    # the first attempt of `flaky` waits; cancel its Slurm job as an operator would
    def running_flaky():
        if not (tmp_path / "flaky.started").exists():
            return None
        running = [i for i, r in cluster.queue_history().items()
                   if job_rule(r) == "rule_flaky" and r["state"] == "RUNNING"]
        return running[0] if running else None

    cancelled = wait_for(running_flaky, 150, "running flaky job", proc)
    slurm_cluster.run(["scancel", cancelled], timeout=15)
    rc, log = finish(proc, 300)
    wall = time.perf_counter() - t0
    assert rc == 0, log[-5000:]
    print(f"smoke workflow through Slurm: {wall:.1f} s")

    # every rule job has a Slurm job id, accepted and recorded by Slurm
    jobs = submissions(log)
    history = cluster.queue_history()
    by_rule: dict[str, list[str]] = {}
    for slurm_id in sorted(jobs, key=int):
        by_rule.setdefault(job_rule(history[slurm_id]), []).append(slurm_id)
    assert set(by_rule) == {"rule_part_wildcards_1", "rule_part_wildcards_2", "rule_flaky", "rule_gather"}
    finished = assert_ran_under_slurm(cluster, set(jobs))

    # flaky: the cancelled job, then a second Slurm job that completed
    first, second = by_rule["rule_flaky"]
    assert first == cancelled
    assert finished[first]["JobState"] == "CANCELLED"
    assert finished[second]["JobState"] == "COMPLETED"
    assert "Trying to restart job" in log
    attempts = (tmp_path / "flaky.attempts").read_text().split()
    assert attempts == ["attempt", f"slurm_job={first}", "attempt", f"slurm_job={second}"]
    for rule in ("rule_part_wildcards_1", "rule_part_wildcards_2", "rule_gather"):
        assert len(by_rule[rule]) == 1 and finished[by_rule[rule][0]]["JobState"] == "COMPLETED"

    # each output was written inside its Slurm job
    for i in ("1", "2"):
        slurm_id = by_rule[f"rule_part_wildcards_{i}"][0]
        assert (tmp_path / "parts" / f"{i}.txt").read_text() == f"part {i} slurm_job={slurm_id}\n"
    gather_id = by_rule["rule_gather"][0]
    assert (tmp_path / "gathered.txt").read_text().endswith(f"slurm_job={gather_id}\n")

    # the GPU request of the profile reached Slurm (the node's one fake GPU)
    assert "gpu" in cluster.job_record(gather_id).get("TresPerJob", "")
    assert "gpu" not in cluster.job_record(by_rule["rule_part_wildcards_1"][0]).get("TresPerJob", "")

    # Slurm's output file of every job, kept under results/logs/slurm
    for slurm_id, path in jobs.items():
        assert path.is_file() and path.is_relative_to(tmp_path / "results" / "logs" / "slurm"), path
        assert path.name == f"{slurm_id}.log"
    assert "CANCELLED" in jobs[cancelled].read_text()


@pytest.mark.slurm
@pytest.mark.slow
def test_a_failing_job_reports_its_log_paths(cluster, tmp_path):
    proc = slurm_snakemake(SMOKE, tmp_path, ["broken.txt", "--retries", "0"], timeout=120)
    rc, log = finish(proc, 120)
    assert rc != 0, log[-3000:]
    jobs = submissions(log)
    assert len(jobs) == 1, log[-3000:]
    (slurm_id, slurm_log), = jobs.items()
    assert cluster.finished_jobs()[slurm_id]["JobState"] == "FAILED"
    # the error names both logs: the rule's own and Slurm's output file of the job
    error = log[log.index("Error in rule broken"):]
    paths = re.search(r"^\s+log: (.+) \(check log file", error, re.MULTILINE).group(1).split(", ")
    assert paths == ["logs/broken.log", str(slurm_log)], paths
    assert "broken on purpose" in (tmp_path / "logs" / "broken.log").read_text()
    assert "Error in rule broken" in slurm_log.read_text()  # the job step's own report
    # and show-failed-logs prints the rule's log right there
    assert "broken on purpose" in error


# ------------------------------------------------------------------ the pipeline (tiny preset)


def missing_stage_functions(rules: set[str]) -> list[str]:
    """`mtnet` functions that the planned rules' scripts import but the package lacks."""
    missing = []
    for rule in sorted(rules):
        script = REPO / "workflow" / "scripts" / f"{rule}.py"
        if not script.exists():
            continue
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mtnet"):
                for alias in node.names:
                    try:
                        ok = hasattr(importlib.import_module(node.module), alias.name)
                    except ImportError:
                        ok = False
                    if not ok:
                        missing.append(f"{node.module}.{alias.name} ({rule})")
    return missing


@pytest.mark.slurm
@pytest.mark.slow
def test_tiny_pipeline_end_to_end_through_slurm(cluster, tmp_path):
    # the reference model and one MTnet variant: its fold trainings are GPU jobs
    overlay = tmp_path / "models.yaml"
    overlay.write_text("models: [Model-Clinical-LR, Model-CR-DR]\n")
    planned = run_snakemake(["-n", "--replace-workflow-config"], tmp_path, timeout=180,
                            configfiles=[TINY, overlay])
    assert planned.returncode == 0, planned.stderr[-3000:]
    plan = dry_run_jobs(planned)
    missing = missing_stage_functions({rule for rule, _ in plan})
    if missing:
        pytest.skip("pipeline stages not implemented in this checkout yet: " + ", ".join(missing))

    t0 = time.perf_counter()
    proc = slurm_snakemake(REPO / "Snakefile", tmp_path,
                           ["--configfile", str(TINY), str(overlay), "--replace-workflow-config"],
                           timeout=900)
    rc, log = finish(proc, 900)
    print(f"tiny pipeline through Slurm: {time.perf_counter() - t0:.1f} s")
    assert rc == 0, log[-6000:]

    # every non-local job of the plan ran as its own Slurm job; the local ones did not
    jobs = submissions(log)
    history = cluster.queue_history()
    remote = sorted(
        f"rule_{rule}" + (f"_wildcards_{'_'.join(wc.values())}" if wc else "")
        for rule, wc in plan if rule not in LOCAL_RULES
    )
    assert sorted(job_rule(history[i]) for i in jobs) == remote
    finished = assert_ran_under_slurm(cluster, set(jobs))
    assert {finished[i]["JobState"] for i in jobs} == {"COMPLETED"}
    for rule in LOCAL_RULES & {rule for rule, _ in plan}:
        assert f"localrule {rule}:" in log, rule
    # MTnet's fold trainings ran as Slurm jobs that asked for the (test node's) GPU
    network = [i for i in jobs if job_rule(history[i]).startswith("rule_train_network")]
    assert len(network) == 3, [job_rule(history[i]) for i in jobs]
    for slurm_id in network:
        assert "gpu" in cluster.job_record(slurm_id).get("TresPerJob", ""), slurm_id

    # the final outputs
    final = re.search(r"^(?:local)?rule all:\n    input: (.+)$", planned.stdout, re.MULTILINE).group(1)
    for path in final.split(", "):
        assert (tmp_path / path).is_file() and (tmp_path / path).stat().st_size > 0, path
