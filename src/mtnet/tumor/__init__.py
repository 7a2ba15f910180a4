"""Tumor masks per center: lesions, target lesion (mRECIST), tumor-in-liver check, ring, crop.

:func:`process_center` is what the workflow's ``tumor`` rule calls; it writes
``lesions.tsv``, ``rings/{pid}.nii.gz`` and ``roi/{pid}.npz`` + ``roi/index.tsv``
(docs/data_contracts.md). ``settings`` is the config's ``tumor`` section. A patient whose masks
fail (empty, wholly or too much outside the liver) is excluded with its reason in
``exclusions.tsv`` beside lesions.tsv, or fails the center (``tumor.on_bad_patient``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from mtnet.config import section
from mtnet.errors import InputError
from mtnet.imaging import NIFTI, array_image, bounding_box, map_patients, patient_ids, read_mask
from mtnet.tables import read_tsv, write_tsv
from mtnet.tumor import measure
from mtnet.tumor.roi import crop_roi, save_roi

log = logging.getLogger(__name__)

LESION_COLUMNS = [
    "patient_id", "n_lesions", "target_diameter_mm", "table_max_diameter_mm",
    "diameter_disagreement", "outside_liver_fraction", "tumor_volume_ml",
    "target_volume_ml", "target_lesion_rule", "ring_volume_ml", "liver_volume_ml",
]
INDEX_COLUMNS = ["patient_id", "file", "grid", "spacing"]


def read_table_diameters(path: str | Path, center: str) -> dict[str, float]:
    """patient_id -> max_diameter_mm of the canonical clinical table (NaN where NA)."""
    table = read_tsv(path, required=("patient_id", "max_diameter_mm"), what="clinical table")
    return dict(zip(table["patient_id"], pd.to_numeric(table["max_diameter_mm"], errors="coerce")))


def process_patient(center: str, pid: str, image: sitk.Image, tumor_path: Path, liver_path: Path,
                    table_diameter: float, settings: dict) -> tuple[dict, np.ndarray, object]:
    """Measurements, ring and ROI of one patient; InputError naming the patient on bad input."""
    tumor_img = read_mask(tumor_path, image, what="tumor", center=center, patient=pid)
    liver_img = read_mask(liver_path, image, what="liver", center=center, patient=pid)
    tumor = sitk.GetArrayFromImage(tumor_img).astype(bool)
    liver = sitk.GetArrayFromImage(liver_img).astype(bool)
    if not tumor.any():
        raise InputError("tumor mask is empty", center=center, patient=pid, path=tumor_path,
                         fix="provide the tumor segmentation, or exclude the patient")
    if not liver.any():
        raise InputError("liver mask is empty", center=center, patient=pid, path=liver_path,
                         fix="check the liver stage (its backend and QC) for this patient")
    spacing = np.array(image.GetSpacing()[::-1])  # (z, y, x)
    outside = measure.outside_fraction(tumor, liver)
    if outside >= 1.0:
        raise InputError("tumor lies wholly outside the liver mask", center=center, patient=pid,
                         path=tumor_path, fix="check that the tumor and liver masks belong to this image")
    if outside > settings["max_outside_liver_fraction"]:
        raise InputError(
            f"{outside:.0%} of the tumor lies outside the liver mask (allowed: "
            f"{settings['max_outside_liver_fraction']:.0%})", center=center, patient=pid,
            path=tumor_path,
            fix="check the liver mask (QC montage) or raise tumor.max_outside_liver_fraction",
        )
    labels, n = measure.label_lesions(tumor[bounding_box(tumor)])  # same labels, in the box
    lesions = measure.lesion_table(labels, n, spacing)
    target = measure.pick_target(lesions, settings["target_lesion"])
    ring = measure.peritumoral_ring(tumor, liver, settings["ring_mm"], spacing)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    row = {
        "patient_id": pid,
        "n_lesions": n,
        "target_diameter_mm": round(target["diameter_mm"], 2),
        "table_max_diameter_mm": table_diameter,
        "diameter_disagreement": measure.diameter_disagreement(
            target["diameter_mm"], table_diameter, settings["diameter_tolerance"]),
        "outside_liver_fraction": round(outside, 4),
        "tumor_volume_ml": round(float(tumor.sum()) * voxel_ml, 3),
        "target_volume_ml": round(target["volume_ml"], 3),
        "target_lesion_rule": settings["target_lesion"],
        "ring_volume_ml": round(float(ring.sum()) * voxel_ml, 3),
        "liver_volume_ml": round(float(liver.sum()) * voxel_ml, 1),
    }
    roi = crop_roi(image, tumor_img, liver_img, settings["roi_grid"], settings["roi_margin_mm"],
                   settings["hu_window"])
    return row, ring, roi


def process_center(center: str, inputs: dict, outputs: dict, settings: dict,
                   threads: int = 1) -> pd.DataFrame:
    """Every ingested patient of a center (``threads`` side by side): lesions.tsv, rings/,
    roi/ (+ index.tsv)."""
    settings = section("tumor", settings)
    images_dir, tumor_dir, liver_dir = (Path(inputs[k]) for k in ("images", "tumor", "liver"))
    pids = patient_ids(images_dir)
    if not pids:
        raise InputError("no ingested images", center=center, path=images_dir,
                         fix="check the ingest stage's output")
    diameters = read_table_diameters(inputs["clinical"], center)
    rings_dir, roi_dir = Path(outputs["rings"]), Path(outputs["roi"])
    for folder in (rings_dir, roi_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    for pid in pids:
        if pid not in diameters:
            raise InputError("patient has an image but no row in the clinical table",
                             center=center, patient=pid, path=inputs["clinical"],
                             fix="re-run ingestion")
    if threads > 1:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)

    def one(pid: str) -> tuple[dict | None, dict | str]:
        """(lesion row, roi index row), or (None, the reason) for an excluded patient."""
        image = sitk.ReadImage(str(images_dir / f"{pid}{NIFTI}"))
        try:
            row, ring, roi = process_patient(
                center, pid, image, tumor_dir / f"{pid}{NIFTI}", liver_dir / f"{pid}{NIFTI}",
                float(diameters[pid]), settings)
        except InputError as err:  # one bad patient is excluded, never the whole center
            if settings["on_bad_patient"] == "error":
                raise
            reason = str(InputError(err.problem, path=err.path, fix=err.fix))
            log.warning("center %s, patient %s: excluded: %s", center, pid, reason)
            return None, reason
        sitk.WriteImage(array_image(ring, image), str(rings_dir / f"{pid}{NIFTI}"),
                        useCompression=True)
        roi.source_file = images_dir / f"{pid}{NIFTI}"  # the crop refers to its CT's box
        save_roi(roi, roi_dir / f"{pid}.npz")
        index = {
            "patient_id": pid, "file": f"{pid}.npz",
            "grid": "x".join(str(int(g)) for g in settings["roi_grid"]),
            "spacing": ",".join(f"{s:.4f}" for s in roi.spacing_mm),
        }
        if row["diameter_disagreement"] == 1:
            log.warning("%s %s: target lesion %.1f mm vs table %.1f mm (> %.0f%% apart)", center,
                        pid, row["target_diameter_mm"], row["table_max_diameter_mm"],
                        100 * settings["diameter_tolerance"])
        return row, index

    results = map_patients(one, pids, threads, center=center)
    excluded = [(pid, reason) for pid, (row, reason) in zip(pids, results) if row is None]
    kept = [(row, index) for row, index in results if row is not None]
    if not kept:
        pid, reason = excluded[0]
        raise InputError(f"no patient left ({len(excluded)} excluded), the first: {reason}",
                         center=center, patient=pid, fix="see the center's exclusions in the log")
    table = pd.DataFrame([row for row, _ in kept], columns=LESION_COLUMNS)
    write_tsv(table, outputs["lesions"])
    write_tsv(pd.DataFrame(excluded, columns=["patient_id", "reason"]),
              outputs.get("exclusions", Path(outputs["lesions"]).with_name("exclusions.tsv")))
    write_tsv(pd.DataFrame([index for _, index in kept], columns=INDEX_COLUMNS),
              roi_dir / "index.tsv")
    return table
