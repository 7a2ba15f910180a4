"""Shared imaging helpers that no stage's tests cover on their own."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from mtnet.errors import InputError
from mtnet.imaging import bounding_box, map_patients


def test_map_patients_keeps_patient_order_and_runs_side_by_side():
    running, most = set(), [0]
    lock = threading.Lock()

    def slow_first(pid):
        with lock:
            running.add(pid)
            most[0] = max(most[0], len(running))
        time.sleep(0.2 if pid == "P1" else 0.01)  # the first patient finishes last
        with lock:
            running.discard(pid)
        return pid.lower()

    pids = [f"P{i}" for i in range(1, 7)]
    assert map_patients(slow_first, pids, workers=2) == [p.lower() for p in pids]
    assert most[0] == 2
    assert map_patients(slow_first, pids, workers=1) == [p.lower() for p in pids]
    assert map_patients(slow_first, [], workers=2) == []


def test_map_patients_on_forked_processes_runs_closures_in_patient_order():
    offset = 100  # a closure: forked workers inherit it, nothing is pickled but IDs and results

    def work(pid):
        time.sleep(0.2 if pid == "P1" else 0.01)
        return pid, os.getpid(), offset + int(pid[1:])

    pids = [f"P{i}" for i in range(1, 6)]
    out = map_patients(work, pids, workers=2, processes=True)
    assert [(p, v) for p, _, v in out] == [(p, 100 + int(p[1:])) for p in pids]
    assert os.getpid() not in {w for _, w, _ in out}


@pytest.mark.parametrize("processes", [False, True])
def test_map_patients_raises_the_first_failing_patient_and_names_it(processes):
    def fail(pid):
        if pid == "P3":
            raise InputError("bad mask", center="C", patient=pid)
        if pid == "P5":
            raise ValueError("unexpected")
        return pid

    with pytest.raises(InputError, match="patient P3: bad mask"):
        map_patients(fail, ["P1", "P2", "P3", "P4", "P5"], workers=2, center="C",
                     processes=processes)
    with pytest.raises(ValueError, match="unexpected") as info:
        map_patients(fail, ["P4", "P5"], workers=2, center="C", processes=processes)
    assert "while processing center C, patient P5" in info.value.__notes__


def test_bounding_box_grows_and_clips():
    mask = np.zeros((5, 6, 7), bool)
    mask[1:3, 0:2, 4:6] = True
    assert bounding_box(mask) == (slice(1, 3), slice(0, 2), slice(4, 6))
    assert bounding_box(mask, pad=2) == (slice(0, 5), slice(0, 4), slice(2, 7))
    assert bounding_box(np.zeros((2, 3, 4), bool)) == (slice(0, 2), slice(0, 3), slice(0, 4))
