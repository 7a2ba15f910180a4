"""Radiomics extraction seconds per patient on one core (mtnet.features), default parameters.

A synthetic `demo` training center (YPH: 24 patients, target lesions about 10-200 mm) is
generated, ingested on the default 1.5 mm grid and put through the tumor stage (its own
liver masks); then every patient's target lesion and ring are extracted with
config/radiomics.yaml through :func:`mtnet.features.extract_patient`, the function
:func:`mtnet.features.extract_center` runs per patient. Reported per patient: wall and CPU
seconds (the CPU time is the one to read on a shared machine), against the target lesion's
diameter. Goal: mean <= 3 s per patient (both regions) on one core.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 3.0
CENTER = "YPH"


def _prepare(root: Path) -> dict:
    from mtnet.io import ingest_center
    from mtnet.synth import write_center
    from mtnet.config import section
    from mtnet.tumor import process_center

    write_center({"preset": "demo", "center": CENTER, "role": "train"}, 20211028,
                 root / "data", root / "truth")
    ing = root / "ingest"
    outputs = {k: str(ing / k) for k in ("images", "tumor", "liver")}
    outputs.update(clinical=str(ing / "clinical.tsv"), qc=str(ing / "qc.tsv"),
                   montage=str(ing / "qc_montage.png"))
    ingest_center(CENTER, {"data": str(root / "data")}, outputs,
                  {"ingest": {"spacing_mm": [1.5, 1.5, 1.5]}})
    tumor = root / "tumor"
    process_center(CENTER, {"images": outputs["images"], "tumor": outputs["tumor"],
                            "liver": outputs["liver"], "clinical": outputs["clinical"]},
                   {"lesions": str(tumor / "lesions.tsv"), "roi": str(tumor / "roi"),
                    "rings": str(tumor / "rings")}, section("tumor"))
    return {"images": Path(outputs["images"]), "tumor": Path(outputs["tumor"]),
            "rings": tumor / "rings", "lesions": tumor / "lesions.tsv"}


def run() -> dict:
    import SimpleITK as sitk

    from mtnet.features import extract_patient

    DEFAULT_PARAMS = REPO / "config" / "radiomics.yaml"
    from mtnet.features.extract import read_target_rules

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})  # one core
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    result: dict = {"center": f"synthetic demo {CENTER}", "ingest_spacing_mm": 1.5,
                    "params": "config/radiomics.yaml", "threads": 1, "goal_s_per_patient": GOAL_S}
    try:
        with tempfile.TemporaryDirectory() as t:
            start = time.perf_counter()
            d = _prepare(Path(t))
            result["prepare_s"] = round(time.perf_counter() - start, 1)
            lesions = pd.read_csv(d["lesions"], sep="\t", dtype={"patient_id": str})
            rules = read_target_rules(d["lesions"], CENTER)
            # warm-up: imports and the extractor's construction are not per patient
            first = lesions["patient_id"].iloc[0]
            extract_patient(CENTER, first, d["images"] / f"{first}.nii.gz",
                            d["tumor"] / f"{first}.nii.gz", d["rings"] / f"{first}.nii.gz",
                            DEFAULT_PARAMS, *rules[first])
            rows = []
            for pid, diameter in zip(lesions["patient_id"], lesions["target_diameter_mm"]):
                w0, c0 = time.perf_counter(), time.process_time()
                records = extract_patient(CENTER, pid, d["images"] / f"{pid}.nii.gz",
                                          d["tumor"] / f"{pid}.nii.gz",
                                          d["rings"] / f"{pid}.nii.gz", DEFAULT_PARAMS,
                                          *rules[pid])
                rows.append({"patient_id": pid, "diameter_mm": float(diameter),
                             "wall_s": time.perf_counter() - w0,
                             "cpu_s": time.process_time() - c0,
                             "failed_regions": sum(bool(r["error"]) for r in records)})
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
    df = pd.DataFrame(rows)
    bins = pd.cut(df["diameter_mm"], [0, 30, 60, 100, 250])
    result.update(
        n_patients=len(df),
        diameter_mm_range=[round(df["diameter_mm"].min(), 1), round(df["diameter_mm"].max(), 1)],
        cpu_s_per_patient={"mean": round(df["cpu_s"].mean(), 2),
                           "median": round(df["cpu_s"].median(), 2),
                           "max": round(df["cpu_s"].max(), 2)},
        wall_s_per_patient={"mean": round(df["wall_s"].mean(), 2),
                            "median": round(df["wall_s"].median(), 2),
                            "max": round(df["wall_s"].max(), 2)},
        cpu_s_by_diameter_mm={str(k): round(v, 2) for k, v in
                              df.groupby(bins, observed=True)["cpu_s"].mean().items()},
        largest={"diameter_mm": round(float(df.loc[df["diameter_mm"].idxmax(), "diameter_mm"]), 1),
                 "cpu_s": round(float(df.loc[df["diameter_mm"].idxmax(), "cpu_s"]), 2)},
        failed_regions=int(df["failed_regions"].sum()),
        goal="mean CPU s per patient (lesion + ring) <= 3 on one core",
        met=bool(df["cpu_s"].mean() <= GOAL_S),
        per_patient=df.round(3).to_dict("records"),
    )
    return result


if __name__ == "__main__":
    import json
    import sys

    sys.path[:0] = [str(REPO / "src")]
    print(json.dumps({k: v for k, v in run().items() if k != "per_patient"}, indent=2))
