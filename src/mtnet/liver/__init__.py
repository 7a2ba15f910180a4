"""Liver masks per center: ``provided`` | ``classical`` | ``unet`` | ``totalsegmentator``.

:func:`segment_center` is what the workflow's ``liver`` rule calls. It writes
``masks/{pid}.nii.gz`` (uint8, on the ingest grid), ``qc.tsv`` (docs/data_contracts.md) and a
montage PNG. An automatic liver mask is completed with the center's tumor masks (given
as ``inputs["tumor"]``): lesions that touch it are joined (:func:`join_tumor`), since the
liver holds its tumors and a large hypodense HCC at the liver's edge defeats any HU window.
A reference for the QC's Dice and surface distance is, in order: the synthetic
generator's true liver mask (``truth/liver_masks``; read for QC only, never for fitting),
else the center's own mask when another backend produced the liver.
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
from mtnet.imaging import (
    NIFTI,
    array_image,
    bounding_box,
    label_components,
    map_patients,
    patient_ids,
    read_mask,
)
from mtnet.liver import classical, qc
from mtnet.tables import write_tsv

BACKENDS = ("provided", "classical", "unet", "totalsegmentator")
# backends whose patients run side by side (the others use the threads within a patient)
PER_PATIENT_PARALLEL = ("provided", "classical")
MONTAGE_PANELS = 16
log = logging.getLogger(__name__)


def _segmenter(backend: str, inputs: dict, settings: dict, threads: int, center: str):
    """A function image -> mask for the backend (checks done once, before any patient)."""
    if backend == "classical":
        spacing = float(settings["classical"]["work_spacing_mm"])
        return lambda image, pid: classical.segment(image, work_spacing_mm=spacing)
    if backend == "unet":
        model_path = inputs.get("model")
        if not model_path or not Path(model_path).exists():
            raise InputError("liver backend 'unet' needs a trained model", center=center,
                             path=model_path, fix="run rule train_liver_unet first")
        from mtnet.liver import unet

        model = unet.load(model_path, threads=threads)
        return lambda image, pid: unet.predict(model, image)
    if backend == "totalsegmentator":
        from mtnet.liver import totalseg

        exe, weights = totalseg.check_available(settings, center=center)
        return lambda image, pid: totalseg.segment(image, exe, weights, threads, center, pid)
    if backend == "provided":
        provided = Path(inputs["provided"])

        def copy(image, pid):
            return read_mask(provided / f"{pid}{NIFTI}", image, what="provided liver",
                             center=center, patient=pid)

        return copy
    raise InputError(f"unknown liver backend {backend!r} (one of {', '.join(BACKENDS)})",
                     center=center)


def join_tumor(liver: np.ndarray, tumor: np.ndarray) -> tuple[np.ndarray, float]:
    """The liver holds its tumors: add every lesion (26-connected component of the tumor
    mask) that overlaps or touches the automatic liver mask, then fill holes. A lesion away
    from the liver is left out, so the tumor stage still catches masks that do not belong
    to the image. Returns the mask and the fraction of tumor voxels added."""
    from scipy import ndimage as ndi

    tumor = tumor.astype(bool)
    if not tumor.any():
        return liver, 0.0
    # in the tumor's box (one voxel wider, for the dilation) and the joined mask's box:
    # the same voxels as over the whole image, at the cost of the boxes
    box = bounding_box(tumor, pad=1)
    tumor_box, liver_box = tumor[box], liver[box].astype(bool)
    labels, _ = label_components(tumor_box, connectivity=26)
    near = ndi.binary_dilation(liver_box, structure=np.ones((3, 3, 3), bool))
    touching = np.unique(labels[near & tumor_box])
    touching = touching[touching > 0]
    if touching.size == 0:
        return liver, 0.0
    joined = liver.astype(bool, copy=True)
    joined[box] |= np.isin(labels, touching)
    added = float((joined[box] & ~liver_box & tumor_box).sum()) / float(tumor.sum())
    fill = bounding_box(joined, pad=1)
    joined[fill] = ndi.binary_fill_holes(joined[fill])
    return joined, added


def _reference(inputs: dict, backend: str, pid: str) -> tuple[Path | None, str]:
    truth = inputs.get("truth")
    if truth:
        path = Path(truth) / "liver_masks" / f"{pid}{NIFTI}"
        if path.exists():
            return path, "synthetic_truth"
    if backend != "provided" and inputs.get("provided"):
        path = Path(inputs["provided"]) / f"{pid}{NIFTI}"
        if path.exists():
            return path, "provided"
    return None, "NA"


def segment_center(center: str, backend: str, inputs: dict, outputs: dict, settings: dict,
                   threads: int = 1) -> pd.DataFrame:
    """Liver mask of every ingested image of a center with its backend, plus QC.

    ``provided`` and ``classical`` run ``threads`` patients at a time; ``unet`` and
    ``totalsegmentator`` one at a time, each with ``threads`` threads.
    """
    images_dir = Path(inputs["images"])
    pids = patient_ids(images_dir)
    if not pids:
        raise InputError("no ingested images", center=center, path=images_dir,
                         fix="check the ingest stage's output")
    masks_dir = Path(outputs["masks"])
    if masks_dir.exists():
        shutil.rmtree(masks_dir)
    masks_dir.mkdir(parents=True)
    settings = section("liver", settings)
    segmenter = _segmenter(backend, inputs, settings, threads, center)
    volume_range = settings["volume_ml_range"]
    workers = threads if backend in PER_PATIENT_PARALLEL else 1
    if workers > 1:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    montage_pids = set(pids[:MONTAGE_PANELS])

    def one(pid: str) -> tuple[dict, dict | None]:
        image = sitk.ReadImage(str(images_dir / f"{pid}{NIFTI}"))
        try:
            mask = segmenter(image, pid)
        except classical.SegmentationFailed as err:
            raise InputError(f"classical liver segmentation failed: {err}", center=center,
                             patient=pid, path=images_dir / f"{pid}{NIFTI}",
                             fix="check the image, or give this center liver masks") from None
        arr = sitk.GetArrayFromImage(mask).astype(bool)
        own, tumor_arr, added = arr, None, 0.0  # the backend's own mask, before the join
        tumor_path = Path(inputs["tumor"]) / f"{pid}{NIFTI}" if inputs.get("tumor") else None
        if tumor_path is not None and tumor_path.exists():
            tumor_arr = sitk.GetArrayFromImage(
                read_mask(tumor_path, image, what="tumor", center=center, patient=pid)).astype(bool)
        if backend != "provided" and tumor_arr is not None:
            arr, added = join_tumor(arr, tumor_arr)
            if added > 0:
                log.info("%s %s: %.0f%% of the tumor joined to the liver mask", center, pid,
                         100 * added)
            mask = array_image(arr, image)
        sitk.WriteImage(mask, str(masks_dir / f"{pid}{NIFTI}"), useCompression=True)
        spacing = np.array(image.GetSpacing()[::-1])
        if not arr.any():
            raise InputError(f"the {backend} backend produced an empty liver mask", center=center,
                             patient=pid, fix="check the image or use another backend")
        volume = qc.volume_ml(arr, spacing)
        ref_path, ref_kind = _reference(inputs, backend, pid)
        ref = None
        row = {"patient_id": pid, "backend": backend, "volume_ml": round(volume, 1),
               "volume_outlier": int(qc.volume_outlier(volume, volume_range)),
               "dice": np.nan, "asd_mm": np.nan, "reference": ref_kind, "dice_backend": np.nan,
               "tumor_outside_backend": np.nan, "tumor_outside": np.nan,
               "tumor_joined": round(added, 4)}
        if tumor_arr is not None:
            row["tumor_outside_backend"] = round(qc.outside_fraction(tumor_arr, own), 4)
            row["tumor_outside"] = round(qc.outside_fraction(tumor_arr, arr), 4)
        if ref_path is not None:
            ref = sitk.GetArrayFromImage(
                read_mask(ref_path, image, what=f"{ref_kind} reference liver", center=center,
                          patient=pid, resample_other=ref_kind == "synthetic_truth")
            ).astype(bool)
            row["dice"] = round(qc.dice(arr, ref), 4)
            row["asd_mm"] = round(qc.average_surface_distance(arr, ref, spacing), 3)
            row["dice_backend"] = row["dice"] if own is arr else round(qc.dice(own, ref), 4)
        log.info("%s %s: %.0f mL, dice %s (backend's own mask %s, %s of the tumor outside it)",
                 center, pid, volume, row["dice"], row["dice_backend"], row["tumor_outside_backend"])
        panel = None
        if pid in montage_pids:
            label = f"{pid} {volume:.0f} mL" + (
                "" if np.isnan(row["dice"]) else f" Dice {row['dice']:.3f}")
            panel = qc.montage_panel(pid, sitk.GetArrayViewFromImage(image), arr, ref, label,
                                     spacing)
        return row, panel

    results = map_patients(one, pids, workers, center=center)
    rows = [row for row, _ in results]
    panels = [panel for _, panel in results if panel is not None]
    table = pd.DataFrame(rows, columns=qc.QC_COLUMNS)
    write_tsv(table, outputs["qc"])
    qc.montage(panels, outputs["montage"],
               title=f"{center}: liver ({backend}); red = mask, green = reference")
    return table
