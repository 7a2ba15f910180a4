"""Ingestion seconds per patient on one core, DICOM and NIfTI (mtnet.io.ingest_center).

The patients are the real HCC-TACE-Seg HCC_048 portal-venous series (512x512x89,
uncompressed) from ../shared/data, ingested as a DICOM center and, re-written as int16
NIfTI, as a NIfTI center; brought to the default grid (1.5 mm in-plane; the 2.5 mm slices
are kept, as the scanner's coarser axes are). Where ../shared/data is
absent, a synthetic 256x256x40 series from tests/ingest_fixtures.py stands in (reported).
``synthetic_nifti``: the generator's `demo` NIfTI patients (bench/cohort.py).

Each run is split into the per-patient work (reading, resampling, writing, the QC row)
and the center's fixed cost (the table, the montage) (bench/cohort.py); CPU seconds are
what an idle core needs. Goal (issue 12): NIfTI <= 1 s per patient. ``mb_per_patient``:
what ingestion writes (the CT as compressed int16 HU, the masks uint8).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MTNET_SHARED_DATA", REPO.parent / "shared" / "data"))
HCC048 = SHARED / "hcc_tace_seg_HCC048_pv" / "HCC048_portal_venous"
GOAL_NIFTI_S = 1.0


def _source_series(tmp: Path) -> tuple[Path, str]:
    if HCC048.exists():
        return HCC048, "HCC-TACE-Seg HCC_048 (512x512x89)"
    sys.path.insert(0, str(REPO / "tests"))
    from ingest_fixtures import phantom, write_series

    hu, _, fov = phantom((40, 256, 256), (0.8, 0.8, 2.5))
    write_series(tmp / "series", hu, fov, spacing_xyz=(0.8, 0.8, 2.5))
    return tmp / "series", "synthetic phantom (256x256x40)"


def _center(tmp: Path, name: str, series: Path, n: int, fmt: str) -> Path:
    from mtnet.io import dicom

    data = tmp / name
    loaded = dicom.load_series(next(iter(dicom.scan_folder(series).series.values())))
    mask = np.zeros(sitk.GetArrayFromImage(loaded.image).shape, np.uint8)
    mask[tuple(s // 2 for s in mask.shape)] = 1
    (data / "images").mkdir(parents=True)
    (data / "tumor").mkdir()
    pids = [f"{name}-{i:04d}" for i in range(1, n + 1)]
    for pid in pids:
        if fmt == "dicom":
            (data / "images" / pid).symlink_to(series)
        else:
            img = sitk.Cast(loaded.image, sitk.sitkInt16)
            sitk.WriteImage(img, str(data / "images" / f"{pid}.nii.gz"), True)
        m = sitk.GetImageFromArray(mask)
        m.CopyInformation(loaded.image)
        sitk.WriteImage(m, str(data / "tumor" / f"{pid}.nii.gz"), True)
    pd.DataFrame({"patient_id": pids, "age": 60, "sex": "M"}).to_csv(data / "clinical.csv", index=False)
    entry = {"source": "files", "images": "images", "image_format": fmt, "tumor_masks": "tumor",
             "clinical": "clinical.csv"}
    (data / "center.yaml").write_text(yaml.safe_dump(entry))
    return data


def _ingest(data: Path, out: Path) -> dict:
    from mtnet.io import ingest_center

    outputs = {k: str(out / k) for k in ("images", "tumor", "liver")}
    outputs.update(clinical=str(out / "clinical.tsv"), qc=str(out / "qc.tsv"),
                   montage=str(out / "qc_montage.png"))
    settings = {"center": {}, "ingest": {"spacing_mm": [1.5, 1.5, 1.5]}}
    ingest_center(data.name, {"data": str(data)}, outputs, settings, threads=1)
    return outputs


def run(n_patients: int = 3) -> dict:
    sys.path[:0] = [str(REPO / "src"), str(REPO / "bench")]
    from cohort import megabytes, one_core, per_patient

    from mtnet.synth import write_center

    result: dict = {"n_patients": n_patients, "spacing_mm": [1.5, 1.5, 1.5], "threads": 1,
                    "goal_nifti_s_per_patient": GOAL_NIFTI_S}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        series, what = _source_series(tmp)
        result["data"] = what
        synth = tmp / "synth" / "YPH"
        write_center({"preset": "demo", "center": "YPH", "role": "train", "n_patients": n_patients},
                     20211028, synth, tmp / "synth" / "truth")
        cases = {fmt: _center(tmp, f"B{fmt[0].upper()}", series, n_patients, fmt)
                 for fmt in ("dicom", "nifti")}
        cases["synthetic_nifti"] = synth
        for name, data in cases.items():
            _ingest(data, tmp / "warm" / name)  # imports and first-call costs out of the timing
            with one_core():
                timing = per_patient(lambda: _ingest(data, tmp / "out" / name))
            timing["mb_per_patient"] = round(
                sum(megabytes(tmp / "out" / name / k) for k in ("images", "tumor", "liver"))
                / n_patients, 3)
            result[name] = timing
    result["met"] = all(result[k]["cpu_s_per_patient"] <= GOAL_NIFTI_S
                        for k in ("nifti", "synthetic_nifti"))
    return result


if __name__ == "__main__":
    print(run())
