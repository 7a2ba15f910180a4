"""Tumor stage: seconds per patient on one core (goal <= 1 s) and MB written per patient.

The stage (mtnet.tumor.process_center: lesions, mRECIST diameter, ring, the MTnet crop)
on synthetic `demo` patients ingested at 1.5 mm with their own liver masks, one core,
split into the per-patient work and the fixed cost (bench/cohort.py). ``mb_per_patient``:
the rings and the crops on disk (the crop's HU as int16, masks uint8, compressed).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "bench")]
GOAL_S_PER_PATIENT = 1.0
N_PATIENTS = int(os.environ.get("MTNET_BENCH_PATIENTS", "6"))


def run() -> dict:
    import SimpleITK as sitk
    from cohort import ingested_center, megabytes, one_core, per_patient

    from mtnet.tumor import process_center

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        ingested = ingested_center(tmp, N_PATIENTS)
        inputs = {"images": ingested["images"], "tumor": ingested["tumor"],
                  "liver": ingested["provided"], "clinical": ingested["clinical"]}
        out = tmp / "tumor"
        outputs = {"lesions": str(out / "lesions.tsv"), "roi": str(out / "roi"),
                   "rings": str(out / "rings")}

        def run_center() -> None:
            process_center("YPH", inputs, outputs, {}, threads=1)

        run_center()  # imports and first-call costs out of the timing
        with one_core():
            result = per_patient(run_center)
        sizes = {k: round(megabytes(outputs[k]) / N_PATIENTS, 3) for k in ("roi", "rings")}
    result.update(data=f"synthetic demo YPH, {N_PATIENTS} patients ingested at 1.5 mm, one core",
                  mb_per_patient=sizes, goal_s_per_patient=GOAL_S_PER_PATIENT,
                  met=result["cpu_s_per_patient"] <= GOAL_S_PER_PATIENT,
                  met_wall=result["wall_s_per_patient"] <= GOAL_S_PER_PATIENT)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
