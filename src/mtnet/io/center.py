"""Ingestion of one center: images, tumor and liver masks, clinical table, QC.

:func:`ingest_center` is what ``workflow/scripts/ingest.py`` calls. A synthetic center is
read from the generator's ``data/`` folder through its ``center.yaml`` (a ``source: files``
entry without ``role``, paths relative to that folder), exactly like a hospital's entry.
Outputs follow docs/data_contracts.md "ingest → everything after".
"""

from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from mtnet import imaging
from mtnet.config import ConfigError, center_validator, read_yaml, section
from mtnet.errors import InputError
from mtnet.factors import CANONICAL_COLUMNS
from mtnet.io import clinical as clin
from mtnet.io import dicom, nifti, plausibility, qc, seg
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


NO_MASKS_FIX = ("MTnet needs one tumor mask per patient: put <patient_id>.nii.gz files (or "
                "DICOM-SEG <patient_id>.dcm with tumor_mask_format: dicom-seg) in a folder and "
                "name it in the center's tumor_masks")


def _check_entry(entry: dict, center: str, where) -> None:
    """Validate a delivery's entry against the schema (no role needed), filling its defaults."""
    if isinstance(entry, dict) and entry.get("source", "files") == "files" and "tumor_masks" not in entry:
        raise InputError("tumor masks are missing: the delivery names no tumor_masks folder",
                         center=center, path=where, fix=NO_MASKS_FIX)
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
    """Patients with a table row, an image and a tumor mask; the others per ``policy``.

    A delivery where no patient matches says why: no tumor mask at all (and how to supply
    them), or table IDs that are not the images' names."""
    fmt = entry["tumor_mask_format"]
    pattern = "<id>.dcm" if fmt == "dicom-seg" else "<id>.nii.gz"
    with_row = [pid for pid in images if pid in table_ids]
    no_mask = [pid for pid in with_row if mask_file(entry.get("tumor_masks"), pid, fmt) is None]
    if with_row and len(no_mask) == len(with_row):
        problem, fix = _no_masks(entry, with_row, pattern)
        raise InputError(problem, center=center, path=entry.get("tumor_masks"), fix=fix)
    if table_ids and images and not with_row:
        raise InputError(
            f"no image matches a row of the clinical table: the table's IDs look like "
            f"{', '.join(map(repr, table_ids[:2]))}, the images' like "
            f"{', '.join(map(repr, list(images)[:2]))}", center=center, path=entry["images"],
            fix="name each image (folder or file) by the table's patient ID (the mapping's id_column)")
    reasons: list[tuple[str, str]] = []
    for pid in table_ids:
        if pid not in images:
            reasons.append((pid, "in the clinical table but no image"))
    for pid in images:
        if pid not in table_ids:
            reasons.append((pid, "image without a row in the clinical table"))
        elif pid in no_mask:
            reasons.append((pid, f"no tumor mask ({pattern})"))
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


def _no_masks(entry: dict, pids: list[str], pattern: str) -> tuple[str, str]:
    folder = entry.get("tumor_masks")
    files = sorted(p.name for p in Path(folder).iterdir() if not p.name.startswith(".")) if folder else []
    held = (f"it holds {len(files)} file(s), e.g. {', '.join(map(repr, files[:2]))}" if files
            else "it is empty")
    problem = (f"tumor masks are missing: none of the {len(pids)} patient(s) has one in the "
               f"tumor_masks folder (looked for {pattern.replace('<id>', pids[0])}; {held})")
    return problem, NO_MASKS_FIX


# ------------------------------------------------------------------ one patient


@dataclass
class PatientResult:
    qc_row: dict
    panel: dict
    image_sha256: str


def _judge(finding, action: str, warnings: list, warned: list, where: dict) -> bool:
    """An error raises (the patient is bad); a warning is kept for qc.tsv. True when found."""
    if finding is None:
        return False
    if action == "error":
        raise InputError(finding.problem, fix=finding.fix, **where)
    warnings.append(f"{finding.check}: {finding.problem}")
    warned.append(finding.check)
    return True


def _load_image(pid: str, path: Path, entry: dict, ingest: dict, override: str | None, center: str,
                warned: list):
    """(image float32 HU on its own grid, series uid or None, qc fields, warnings, resampled)."""
    checks = ingest["checks"]
    if entry["image_format"] == "nifti":
        warnings: list[str] = []
        where = dict(center=center, patient=pid, path=path)
        finding, bad = plausibility.nifti_scan(path)
        _judge(finding, checks["truncated"], warnings, warned, where)
        if bad is not None and _judge(plausibility.nonfinite(bad), checks["nonfinite"], warnings,
                                      warned, where):
            warnings[-1] += "; read as air (-1024 HU)"
        image, padded = nifti.read_image(path, air=bad, center=center, patient=pid)
        if padded:
            warnings.append(f"{padded} voxels below -1024 HU set to -1024")
        fields = {"source": "nifti", "series_number": None, "series_description": None,
                  "pick_reason": "NIfTI file", "slices": image.GetSize()[2], "dropped_slices": "",
                  "kvp": None, "kernel": None}
        return image, None, fields, warnings, False
    scan = dicom.scan_folder(path)
    for note in scan.skipped:
        log.info("center %s, patient %s: skipped %s", center, pid, note)
    where = dict(center=center, patient=pid, path=path)
    warnings = []
    if scan.damaged:
        _judge(plausibility.Finding(
            "truncated", f"{len(scan.damaged)} damaged DICOM file(s): {'; '.join(scan.damaged[:3])}",
            "deliver the complete files again (or set ingest.checks.truncated: warn to leave them out)"),
            checks["truncated"], warnings, warned, where)
    series, reason = dicom.pick_series(scan, entry.get("phase"), override, **where)
    log.info("center %s, patient %s: picked %s: %s", center, pid, series.label, reason)
    loaded = dicom.load_series(series, ingest["nonuniform_spacing"], **where)
    fields = {"source": "dicom", "series_number": series.number,
              "series_description": series.description, "pick_reason": reason,
              "slices": loaded.slices, "dropped_slices": ";".join(loaded.dropped),
              "kvp": loaded.acquisition["kvp"], "kernel": loaded.acquisition["kernel"]}
    return loaded.image, series.uid, fields, warnings + list(loaded.warnings), loaded.resampled_slices


def _source_mask(kind: str, path: Path, image: sitk.Image, entry: dict, series_uid, resampled,
                 pid: str, center: str) -> tuple[sitk.Image, str, str | None]:
    """A tumor or liver mask on the image's own grid, its geometry checked; with the labels
    found in the delivered file (for qc.tsv) and a warning about them (or None)."""
    if path.suffix == ".dcm":
        mask = seg.read_seg_mask(path, image, int(entry["tumor_segment"]), series_uid,
                                 slice_tolerance=0.5 if resampled else 0.05,
                                 center=center, patient=pid)
        if not sitk.GetArrayViewFromImage(mask).any():
            raise InputError(f"tumor mask is empty (segment {entry['tumor_segment']} has no voxel)",
                             center=center, patient=pid, path=path,
                             fix="supply the tumor segmentation, or remove the patient from the delivery")
        return mask, f"segment {entry['tumor_segment']}", None
    mask, labels, note = nifti.read_mask(path, entry.get(f"{kind}_label"), kind=kind,
                                         center=center, patient=pid)
    note = note and f"{path.name}: {note}"
    found = ",".join(map(str, [0, *labels]))
    differs = imaging.grid_difference(mask, image)
    if not differs:
        return mask, found, note
    if imaging.same_voxel_centres(image, mask):  # same grid, other axis order / flips
        return imaging.resample_mask(mask, image), found, note
    raise InputError(f"{kind} mask is not on the image grid ({differs})", center=center,
                     patient=pid, path=path, fix="supply the mask made on this image")


def ingest_patient(pid: str, path: Path, entry: dict, ingest: dict, override: str | None,
                   center: str, outputs: dict) -> PatientResult:
    """One patient checked and ingested; an InputError naming the delivered file when it is
    bad (nothing is written then)."""
    checks = ingest["checks"]
    warned: list[str] = []
    image, series_uid, fields, warnings, resampled = _load_image(pid, path, entry, ingest, override,
                                                                 center, warned)
    where = dict(center=center, patient=pid, path=path)
    orient = checks["orientation"]
    small, voxel_mm = plausibility.coarse(image, orient["work_spacing_mm"])
    measures, finding = plausibility.hu_findings(small, checks["hu"])
    if _judge(finding, checks["hu"]["action"], warnings, warned, where):
        orientation = "not assessable: HU implausible"
    else:
        _judge(plausibility.geometry_finding(small, voxel_mm, image.GetSize(), checks["geometry"],
                                             orient["body_hu"]),
               checks["geometry"]["action"], warnings, warned, where)
        orientation, finding = plausibility.orientation_findings(small, voxel_mm, orient)
        _judge(finding, orient["action"], warnings, warned, where)

    tumor_path = mask_file(entry.get("tumor_masks"), pid, entry["tumor_mask_format"])
    tumor, tumor_labels, note = _source_mask("tumor", tumor_path, image, entry, series_uid,
                                             resampled, pid, center)
    if note:
        warnings.append(note)
    in_air = plausibility.mask_in_air(sitk.GetArrayViewFromImage(tumor),
                                      sitk.GetArrayViewFromImage(image), orient["body_hu"])
    limit = checks["mask_in_body"]["max_air_fraction"]
    if in_air > limit:
        _judge(plausibility.Finding(
            "mask_in_body", f"{in_air:.0%} of the tumor mask lies in air (the image below "
                            f"{orient['body_hu']:g} HU there): the mask of another image, or "
                            f"flipped axes?",
            "supply the mask made on this image"), checks["mask_in_body"]["action"], warnings,
            warned, dict(where, path=tumor_path))
    liver_path = mask_file(entry.get("liver_masks"), pid)
    liver, liver_labels = None, ""
    if liver_path is not None:
        liver, liver_labels, note = _source_mask("liver", liver_path, image, entry, series_uid,
                                                 resampled, pid, center)
        if note:
            warnings.append(note)
    elif entry.get("liver_masks"):
        warnings.append("no liver mask in the center's liver_masks folder")

    grid = imaging.covering_grid(image, imaging.kept_spacing(image, ingest["spacing_mm"],
                                                             ingest["upsample"]))
    out_image = imaging.resample_hu(image, grid)
    out_tumor = imaging.resample_mask(tumor, grid)
    out_liver = None if liver is None else imaging.resample_mask(liver, grid)
    for other in (out_tumor, out_liver):
        if other is not None and imaging.grid_difference(out_image, other):
            raise AssertionError("mask and image grids differ after resampling")
    tumor_arr = sitk.GetArrayFromImage(out_tumor)
    if not tumor_arr.any():
        raise InputError(
            f"the tumor mask ({int(sitk.GetArrayViewFromImage(tumor).sum())} voxel(s) in the file) "
            f"has no voxel left on the ingest grid ({', '.join(f'{s:g}' for s in grid.spacing)} "
            f"mm)", center=center, patient=pid, path=tumor_path,
            fix="check the mask, or set a finer ingest.spacing_mm")
    for out, key in ((out_image, "images"), (out_tumor, "tumor"), (out_liver, "liver")):
        if out is not None:
            sitk.WriteImage(out, str(Path(outputs[key]) / f"{pid}.nii.gz"), True)

    arr = sitk.GetArrayFromImage(out_image)
    liver_arr = None if out_liver is None else sitk.GetArrayFromImage(out_liver)
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
        **measures,
        "orientation": orientation,
        "checks": ", ".join(dict.fromkeys(warned)) or "ok",
        "tumor_labels": tumor_labels,
        "liver_labels": liver_labels,
    }
    for w in warnings:
        log.warning("center %s, patient %s: %s", center, pid, w)
    return PatientResult(row, qc.panel(pid, arr, tumor_arr, liver_arr, out_image.GetSpacing()[::-1]),
                         imaging.image_fingerprint(out_image))


def _reason(err: InputError) -> str:
    """An exclusion's reason: the one-line problem with its file and fix, without the center
    and patient (the row names them)."""
    return str(InputError(err.problem, path=err.path, column=err.column, fix=err.fix))


# ------------------------------------------------------------------ the center


def ingest_center(center: str, inputs: dict, outputs: dict, settings: dict, threads: int = 1) -> None:
    """Ingest one center into ``outputs`` (keys of rule ``ingest``: images, tumor, liver,
    clinical, qc, montage; optional missing, exclusions, fingerprints — default beside
    clinical.tsv). A bad patient is excluded with its reason, or fails the center
    (``ingest.on_bad_patient``)."""
    ingest = section("ingest", settings.get("ingest"))
    entry = center_entry(center, inputs, settings)
    table_dir = Path(outputs["clinical"]).parent
    missing_path = Path(outputs.get("missing", table_dir / "missing_columns.tsv"))
    exclusions_path = Path(outputs.get("exclusions", table_dir / "exclusions.tsv"))
    fingerprints_path = Path(outputs.get("fingerprints", table_dir / "fingerprints.tsv"))

    # the table first: cheap, and its problems are the commonest
    table = clin.load_clinical(entry["clinical"], center, entry.get("clinical_mapping"),
                               entry.get("clinical_sheet"))
    images = image_patients(entry)
    if not images:
        raise InputError(f"no patient images in the images folder (expected "
                         f"{'one DICOM folder' if entry['image_format'] == 'dicom' else 'one <id>.nii.gz'}"
                         f" per patient)", center=center, path=entry["images"],
                         fix="check the folder and image_format")
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

    def one(pid: str) -> PatientResult | InputError:
        try:
            return ingest_patient(pid, images[pid], entry, ingest, overrides.get(pid), center, outputs)
        except InputError as err:
            if ingest["on_bad_patient"] == "error":
                raise
            return err

    # the threads run patients side by side, each filter on one; DICOM on forked processes:
    # reading a series is mostly pydicom and highdicom, Python that holds the GIL
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    results = imaging.map_patients(one, patients, threads, center=center,
                                   processes=entry["image_format"] == "dicom")
    for pid, result in zip(patients, results):
        if isinstance(result, InputError):
            log.warning("center %s, patient %s: excluded: %s", center, pid, _reason(result))
            excluded.append((pid, _reason(result)))
    kept = {pid: r for pid, r in zip(patients, results) if not isinstance(r, InputError)}
    if not kept:
        first = next(r for r in results if isinstance(r, InputError))
        raise InputError(f"{first.problem}; no patient left ({len(results)} of {len(results)} "
                         f"excluded, each with its reason in the log)", center=center,
                         patient=first.patient, path=first.path, fix=first.fix)
    patients = sorted(kept)

    keep = table.table[table.table["patient_id"].isin(patients)].sort_values("patient_id")
    write_tsv(keep, outputs["clinical"])
    write_tsv(table.missing, missing_path)
    write_tsv(pd.DataFrame(excluded, columns=["patient_id", "reason"]), exclusions_path)
    write_tsv(fingerprints(keep, {pid: kept[pid].image_sha256 for pid in patients}),
              fingerprints_path)
    rows = [kept[pid].qc_row for pid in patients]
    write_tsv(qc.qc_table(rows), outputs["qc"])
    qc.montage([kept[pid].panel for pid in patients], outputs["montage"],
               f"center {center}: {len(patients)} patients, spacing {ingest['spacing_mm']} mm"
               + ("" if ingest["upsample"] else " or the scanner's, where coarser"))
    log.info("center %s: ingested %d patient(s), excluded %d", center, len(patients), len(excluded))


FINGERPRINT_COLUMNS = ["patient_id", "image_sha256", "clinical_sha256", "clinical_fields"]


def fingerprints(table: pd.DataFrame, image_sha: dict[str, str]) -> pd.DataFrame:
    """Per patient: the ingested image's SHA-256 and the SHA-256 of the canonical clinical row
    (every canonical column but patient_id, as written to clinical.tsv), with the number of
    its non-missing fields."""
    columns = CANONICAL_COLUMNS[1:]
    rows = []
    for record in table[["patient_id", *columns]].astype(object).to_dict("records"):
        values = ["NA" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
                  for v in (record[c] for c in columns)]
        rows.append({"patient_id": record["patient_id"], "image_sha256": image_sha[record["patient_id"]],
                     "clinical_sha256": hashlib.sha256("\t".join(values).encode()).hexdigest(),
                     "clinical_fields": sum(v != "NA" for v in values)})
    return pd.DataFrame(rows, columns=FINGERPRINT_COLUMNS)
