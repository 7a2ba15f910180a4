"""Ingestion of one center: images, tumor and liver masks, clinical table, QC.

:func:`ingest_center` is what ``workflow/scripts/ingest.py`` calls. A synthetic center is
read from the generator's ``data/`` folder through its ``center.yaml`` (a ``source: files``
entry without ``role``, paths relative to that folder), exactly like a hospital's entry.
Outputs follow docs/data_contracts.md "ingest → everything after".
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from mtnet import imaging
from mtnet.config import ConfigError, center_validator, read_yaml, section
from mtnet.errors import InputError
from mtnet.io import clinical as clin
from mtnet.io import dicom, nifti, qc, seg
from mtnet.tables import read_tsv, write_tsv

log = logging.getLogger(__name__)

PATH_KEYS = ("images", "tumor_masks", "liver_masks", "clinical", "clinical_mapping")
NIFTI_SUFFIXES = (".nii.gz", ".nii")


# ------------------------------------------------------------------ the center's entry


def read_center_yaml(folder: Path, center: str) -> dict:
    """A ``data/center.yaml``: validated against the schema's center entry (no ``role``),
    with its relative paths resolved against ``folder``."""
    path = Path(folder) / "center.yaml"
    if not path.exists():
        raise InputError("no center.yaml in the data folder", center=center, path=folder,
                         fix="describe the folder with a center.yaml (docs/data_contracts.md)")
    try:
        entry = read_yaml(path) or {}
    except ConfigError as err:
        raise InputError(str(err), center=center) from None
    _check_entry(entry, center, path)
    if entry.get("source") != "files":
        raise InputError("center.yaml must describe `source: files`", center=center, path=path)
    entry = resolve_paths(entry, Path(folder))
    for key in PATH_KEYS:
        if key in entry and not Path(entry[key]).exists():
            raise InputError(f"{key}: path does not exist: {entry[key]}", center=center, path=path)
    return entry


def _check_entry(entry: dict, center: str, where) -> None:
    """Validate a delivery's entry against the schema (no role needed), filling its defaults."""
    errors = sorted(center_validator(role=False).iter_errors(entry),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        err = errors[0]
        if err.context:
            err = err.context[0]
        key = ".".join(map(str, err.absolute_path)) or "(top level)"
        raise InputError(f"{key}: {err.message}", center=center, path=where)


def resolve_paths(entry: dict, base: Path) -> dict:
    entry = copy.deepcopy(entry)
    for key in PATH_KEYS:
        if key in entry and not Path(entry[key]).is_absolute():
            entry[key] = str(base / entry[key])
    phase = entry.get("phase") or {}
    if "overrides" in phase and not Path(phase["overrides"]).is_absolute():
        phase["overrides"] = str(base / phase["overrides"])
    return entry


def center_entry(center: str, inputs: dict, settings: dict) -> dict:
    """The entry to ingest: a synthetic center's center.yaml, else the config's entry with
    the paths the workflow resolved (``inputs``)."""
    if "data" in inputs:
        return read_center_yaml(Path(inputs["data"]), center)
    entry = copy.deepcopy(dict(settings.get("center") or {}))
    for key in PATH_KEYS:
        if key in inputs:
            entry[key] = str(inputs[key])
    if "phase_overrides" in inputs:
        entry.setdefault("phase", {})["overrides"] = str(inputs["phase_overrides"])
    entry.setdefault("source", "files")
    _check_entry(entry, center, "the center's entry")
    return entry


# ------------------------------------------------------------------ patients and matching


def image_patients(entry: dict) -> dict[str, Path]:
    """patient_id -> its DICOM folder or NIfTI file."""
    folder = Path(entry["images"])
    found: dict[str, Path] = {}
    if entry["image_format"] == "dicom":
        for p in sorted(folder.iterdir()):
            if p.is_dir() and not p.name.startswith("."):
                found[p.name] = p
    else:
        for p in sorted(folder.iterdir()):
            for suffix in NIFTI_SUFFIXES:
                if p.is_file() and p.name.endswith(suffix):
                    found[p.name[: -len(suffix)]] = p
    return found


def mask_file(folder: str | None, pid: str, fmt: str = "nifti") -> Path | None:
    if not folder:
        return None
    suffixes = (".dcm",) if fmt == "dicom-seg" else NIFTI_SUFFIXES
    for suffix in suffixes:
        p = Path(folder) / f"{pid}{suffix}"
        if p.exists():
            return p
    return None


def read_overrides(path: str | None, center: str) -> dict[str, str]:
    if not path:
        return {}
    df = read_tsv(path, text_columns=("patient_id", "series_instance_uid"),
                  required=("patient_id", "series_instance_uid"), what="phase overrides")
    return dict(zip(df["patient_id"].str.strip(), df["series_instance_uid"].str.strip()))


def match_patients(table_ids: list[str], images: dict[str, Path], entry: dict, center: str,
                   policy: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Patients with a table row, an image and a tumor mask; the others per ``policy``."""
    fmt = entry["tumor_mask_format"]
    reasons: list[tuple[str, str]] = []
    for pid in table_ids:
        if pid not in images:
            reasons.append((pid, "in the clinical table but no image"))
    for pid in images:
        if pid not in table_ids:
            reasons.append((pid, "image without a row in the clinical table"))
        elif mask_file(entry.get("tumor_masks"), pid, fmt) is None:
            reasons.append((pid, f"no tumor mask ({'<id>.dcm' if fmt == 'dicom-seg' else '<id>.nii.gz'})"))
    if reasons and policy == "error":
        clin.raise_problems(
            [InputError(why, center=center, patient=pid,
                        fix="complete the data or set ingest.unmatched: exclude") for pid, why in reasons],
            "matching images, masks and the clinical table",
        )
    for pid, why in reasons:
        log.warning("center %s, patient %s: excluded: %s", center, pid, why)
    excluded = {pid for pid, _ in reasons}
    return [pid for pid in table_ids if pid not in excluded], reasons


# ------------------------------------------------------------------ one patient


@dataclass
class PatientResult:
    qc_row: dict
    panel: dict


def _load_image(pid: str, path: Path, entry: dict, ingest: dict, override: str | None, center: str):
    """(image float32 HU on its own grid, series uid or None, qc fields, warnings)."""
    if entry["image_format"] == "nifti":
        image, padded = nifti.read_image(path, center=center, patient=pid)
        warnings = [f"{padded} voxels below -1024 HU set to -1024"] if padded else []
        fields = {"source": "nifti", "series_number": None, "series_description": None,
                  "pick_reason": "NIfTI file", "slices": image.GetSize()[2], "dropped_slices": "",
                  "kvp": None, "kernel": None}
        return image, None, fields, warnings, False
    scan = dicom.scan_folder(path)
    for note in scan.skipped:
        log.info("center %s, patient %s: skipped %s", center, pid, note)
    where = dict(center=center, patient=pid, path=path)
    series, reason = dicom.pick_series(scan, entry.get("phase"), override, **where)
    log.info("center %s, patient %s: picked %s: %s", center, pid, series.label, reason)
    loaded = dicom.load_series(series, ingest["nonuniform_spacing"], **where)
    fields = {"source": "dicom", "series_number": series.number,
              "series_description": series.description, "pick_reason": reason,
              "slices": loaded.slices, "dropped_slices": ";".join(loaded.dropped),
              "kvp": loaded.acquisition["kvp"], "kernel": loaded.acquisition["kernel"]}
    return loaded.image, series.uid, fields, list(loaded.warnings), loaded.resampled_slices


def _source_mask(kind: str, path: Path, image: sitk.Image, entry: dict, series_uid, resampled,
                 pid: str, center: str) -> sitk.Image:
    """A tumor or liver mask on the image's own grid, its geometry checked."""
    if path.suffix == ".dcm":
        return seg.read_seg_mask(path, image, int(entry["tumor_segment"]), series_uid,
                                 slice_tolerance=0.5 if resampled else 0.05,
                                 center=center, patient=pid)
    label = int(entry["tumor_segment"]) if kind == "tumor" else None
    mask = nifti.read_mask(path, label, center=center, patient=pid)
    differs = imaging.grid_difference(mask, image)
    if not differs:
        return mask
    if imaging.same_voxel_centres(image, mask):  # same grid, other axis order / flips
        return imaging.resample_mask(mask, image)
    raise InputError(f"{kind} mask is not on the image grid ({differs})", center=center,
                     patient=pid, path=path, fix="supply the mask made on this image")


def ingest_patient(pid: str, path: Path, entry: dict, ingest: dict, override: str | None,
                   center: str, outputs: dict) -> PatientResult:
    image, series_uid, fields, warnings, resampled = _load_image(pid, path, entry, ingest, override, center)
    grid = imaging.covering_grid(image, ingest["spacing_mm"])
    out_image = imaging.resample_hu(image, grid)

    tumor_path = mask_file(entry.get("tumor_masks"), pid, entry["tumor_mask_format"])
    tumor = _source_mask("tumor", tumor_path, image, entry, series_uid, resampled, pid, center)
    out_tumor = imaging.resample_mask(tumor, grid)
    liver_path = mask_file(entry.get("liver_masks"), pid)
    out_liver = None
    if liver_path is not None:
        liver = _source_mask("liver", liver_path, image, entry, series_uid, resampled, pid, center)
        out_liver = imaging.resample_mask(liver, grid)
    elif entry.get("liver_masks"):
        warnings.append("no liver mask in the center's liver_masks folder")

    for other in (out_tumor, out_liver):
        if other is not None and imaging.grid_difference(out_image, other):
            raise AssertionError("mask and image grids differ after resampling")
    for out, key in ((out_image, "images"), (out_tumor, "tumor"), (out_liver, "liver")):
        if out is not None:
            sitk.WriteImage(out, str(Path(outputs[key]) / f"{pid}.nii.gz"), True)

    arr = sitk.GetArrayFromImage(out_image)
    tumor_arr = sitk.GetArrayFromImage(out_tumor)
    liver_arr = None if out_liver is None else sitk.GetArrayFromImage(out_liver)
    if not tumor_arr.any():
        warnings.append("tumor mask is empty after resampling")
    p1, p50, p99 = qc.hu_percentiles(arr)
    row = {
        "patient_id": pid, **fields,
        "shape_before": "x".join(map(str, image.GetSize())),
        "spacing_before_mm": ",".join(f"{v:.4g}" for v in image.GetSpacing()),
        "shape": "x".join(map(str, out_image.GetSize())),
        "spacing_mm": ",".join(f"{v:.4g}" for v in out_image.GetSpacing()),
        "hu_p1": round(p1, 1), "hu_p50": round(p50, 1), "hu_p99": round(p99, 1),
        "tumor_voxels": int(tumor_arr.sum()),
        "liver_mask": liver_arr is not None,
        "warnings": " | ".join(warnings),
    }
    for w in warnings:
        log.warning("center %s, patient %s: %s", center, pid, w)
    return PatientResult(row, qc.panel(pid, arr, tumor_arr, liver_arr, out_image.GetSpacing()[::-1]))


# ------------------------------------------------------------------ the center


def ingest_center(center: str, inputs: dict, outputs: dict, settings: dict, threads: int = 1) -> None:
    """Ingest one center into ``outputs`` (keys of rule ``ingest``: images, tumor, liver,
    clinical, qc, montage; optional missing, exclusions — default beside clinical.tsv)."""
    ingest = section("ingest", settings.get("ingest"))
    entry = center_entry(center, inputs, settings)
    table_dir = Path(outputs["clinical"]).parent
    missing_path = Path(outputs.get("missing", table_dir / "missing_columns.tsv"))
    exclusions_path = Path(outputs.get("exclusions", table_dir / "exclusions.tsv"))

    # the table first: cheap, and its problems are the commonest
    table = clin.load_clinical(entry["clinical"], center, entry.get("clinical_mapping"),
                               entry.get("clinical_sheet"))
    images = image_patients(entry)
    table_ids = list(table.table["patient_id"])
    patients, excluded = match_patients(table_ids, images, entry, center, ingest["unmatched"])
    if not patients:
        raise InputError("no patient has a table row, an image and a tumor mask", center=center,
                         path=entry["images"], fix="check the folder and table IDs")
    overrides = read_overrides((entry.get("phase") or {}).get("overrides"), center)

    for key in ("images", "tumor", "liver"):
        Path(outputs[key]).mkdir(parents=True, exist_ok=True)
    for key in ("clinical", "qc", "montage"):
        Path(outputs[key]).parent.mkdir(parents=True, exist_ok=True)

    def one(pid: str) -> PatientResult:
        return ingest_patient(pid, images[pid], entry, ingest, overrides.get(pid), center, outputs)

    # the threads run patients side by side, each filter on one; DICOM on forked processes:
    # reading a series is mostly pydicom and highdicom, Python that holds the GIL
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    results = imaging.map_patients(one, patients, threads, center=center,
                                   processes=entry["image_format"] == "dicom")

    keep = table.table[table.table["patient_id"].isin(patients)].sort_values("patient_id")
    write_tsv(keep, outputs["clinical"])
    write_tsv(table.missing, missing_path)
    write_tsv(pd.DataFrame(excluded, columns=["patient_id", "reason"]), exclusions_path)
    order = np.argsort(patients)
    rows = [results[i].qc_row for i in order]
    write_tsv(qc.qc_table(rows), outputs["qc"])
    qc.montage([results[i].panel for i in order], outputs["montage"],
               f"center {center}: {len(patients)} patients, spacing {ingest['spacing_mm']} mm")
    log.info("center %s: ingested %d patient(s), excluded %d", center, len(patients), len(excluded))
