"""`mtnet run` (mtnet.app.run) on a toy workflow whose one job writes a line every 0.2 s:
a live run's lock is never cleared, a dead run's is, and the jobs of a killed snakemake (or
of a killed supervisor) stop writing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import VENV_BIN, workflow_env

from mtnet.app import run as supervisor

pytestmark = pytest.mark.slow

SNAKEFILE = """
rule all:
    input: "out.txt"
rule write:
    output: "out.txt"
    shell: "for i in $(seq 1 60); do echo $i >> out.txt; sleep 0.2; done"
"""


def start(work):
    log = (work / "run.log").open("a")
    return subprocess.Popen([str(VENV_BIN / "mtnet"), "run", "--cores", "1", "--rerun-incomplete",
                             "--grace", "3"], cwd=work, env=workflow_env(), stdout=log,
                            stderr=subprocess.STDOUT)


def until_writing(work, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while not (work / "out.txt").exists() or (work / "out.txt").stat().st_size < 4:
        assert proc.poll() is None and time.monotonic() < deadline, (work / "run.log").read_text()
        time.sleep(0.2)


def snakemake_of(proc):
    return next(p for p in psutil.Process(proc.pid).children()
                if any("snakemake" in part for part in p.cmdline()[:2]))


def lines(work):
    return len((work / "out.txt").read_text().splitlines())


@pytest.fixture()
def work(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    return tmp_path


def test_a_live_run_keeps_its_lock_and_a_dead_one_loses_it(work):
    first = start(work)
    until_writing(work, first)
    second = subprocess.run([str(VENV_BIN / "mtnet"), "run", "--cores", "1"], cwd=work,
                            env=workflow_env(), capture_output=True, text=True, timeout=120)
    snake = snakemake_of(first)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"error: another run is working in {work} (pid {snake.pid}: "
        f"{' '.join(snake.cmdline())[:120]}); wait for it to end, or stop it (kill {snake.pid}) "
        f"and run again")
    assert list((work / ".snakemake" / "locks").iterdir())  # untouched
    # SIGKILL of snakemake: its job stops writing, the lock stays behind
    job = snake.children(recursive=True)
    snake.kill()
    assert first.wait(timeout=60) == 137
    psutil.wait_procs(job, timeout=5)
    written = lines(work)
    time.sleep(1.5)
    assert lines(work) == written, "the killed run's job goes on writing"
    assert list((work / ".snakemake" / "locks").iterdir())
    assert supervisor.live_runs(work) == []
    # the same command again: the dead run's lock is cleared and the job rerun to its end
    again = start(work)
    assert again.wait(timeout=600) == 0, (work / "run.log").read_text()
    assert lines(work) == 60
    assert "is a dead run's lock (no live snakemake works here): clearing it" in (work / "run.log").read_text()


def test_a_killed_supervisor_takes_its_snakemake_and_jobs_along(work):
    first = start(work)
    until_writing(work, first)
    snake = snakemake_of(first)
    tree = [snake, *snake.children(recursive=True)]
    os.kill(first.pid, signal.SIGKILL)  # the supervisor itself, as `kill -9` of make's group would
    first.wait(timeout=30)
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    written = lines(work) if (work / "out.txt").exists() else 0
    time.sleep(1.5)
    assert (lines(work) if (work / "out.txt").exists() else 0) == written


def test_the_working_directory_of_a_command_line(tmp_path):
    assert supervisor.workdir_of(["--cores", "2", "-d", "sub"], tmp_path) == (tmp_path / "sub").resolve()
    assert supervisor.workdir_of(["--directory=/x", "--cores", "2"], tmp_path) == Path("/x").resolve()
    assert supervisor.workdir_of(["--cores", "2"], tmp_path) == tmp_path.resolve()
