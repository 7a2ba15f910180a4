"""bench/gpu_train.py runs here on the CPU (``--smoke``) and fails loudly where it must."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, workflow_env

SCRIPT = REPO / "bench" / "gpu_train.py"


def _run(*args, timeout=240):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=workflow_env(), cwd=REPO)
    return proc, json.loads(proc.stdout)


def test_throughput_smoke_on_the_cpu():
    proc, out = _run("throughput", "--smoke", "--device", "cpu", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    assert out["status"] == "ok" and out["smoke"] and out["machine"]["device"] == "cpu"
    assert out["unet"]["volumes_per_s"] > 0 and out["mtnet"]["volumes_per_s"] > 0
    assert out["unet"]["steps"] == out["mtnet"]["epochs_timed"] * out["mtnet"]["steps_per_epoch"]
    assert out["ratio"] == pytest.approx(out["mtnet"]["volumes_per_s"] / out["unet"]["volumes_per_s"],
                                         abs=1e-3)
    assert {"goal", "floor", "met_goal", "met_floor"} <= set(out)
    assert out["mtnet"]["parameters"] > out["unet"]["parameters"]  # the same backbone + heads


def test_one_training_smoke_on_the_cpu():
    proc, out = _run("train", "--smoke", "--device", "cpu", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    assert out["status"] == "ok" and out["epochs_run"] == 3 and out["patients"] == 12
    assert out["train_wall_s"] > 0 and out["train_volumes_per_s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_a_gpu_that_is_absent_fails_loudly():
    proc, out = _run("throughput", "--smoke", "--device", "cuda", timeout=120)
    assert proc.returncode == 1
    assert out["status"] == "error" and "no GPU" in out["error"]
