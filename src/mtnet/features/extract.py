"""pyradiomics features of each patient's target lesion and peritumoral ring, per center."""

from __future__ import annotations

import json
import logging
import platform
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from mtnet.errors import InputError
from mtnet.features.params import (RING_EXCLUDED_CLASSES, REGIONS, make_extractor,
                                   params_sha256, validate_params)
from mtnet.imaging import NIFTI, array_image, patient_ids, read_mask
from mtnet.tables import read_tsv, write_tsv
from mtnet.tumor import measure

log = logging.getLogger(__name__)

ID_COLUMNS = ["patient_id", "region", "reason"]
DEFAULT_RULE = "longest_axial_diameter"


# ------------------------------------------------------------------ one patient


def target_lesion(tumor: np.ndarray, spacing_zyx, rule: str = DEFAULT_RULE) -> tuple[np.ndarray, int]:
    """The target lesion's mask (mtnet.tumor.measure's labelling and rule) and the lesion count."""
    labels, n = measure.label_lesions(tumor)
    if n == 0:
        return np.zeros(tumor.shape, bool), 0
    target = measure.pick_target(measure.lesion_table(labels, n, spacing_zyx), rule)
    return labels == target["label"], n


# pyradiomics warnings that say nothing about this patient
_UNINFORMATIVE = ("GLCM is symmetrical",)


class _Messages(logging.Handler):
    """pyradiomics' warnings and errors during one extraction (for the ``reason`` column)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        text = record.getMessage().strip()
        if text.startswith(_UNINFORMATIVE):
            return
        if "Traceback" in text:  # pyradiomics' "FAILED: <traceback>": keep the exception line
            text = text.splitlines()[-1]
        self.lines.append(" ".join(text.split()))


def extract_region(extractor, image: sitk.Image, mask: sitk.Image) -> tuple[dict, list[str], str]:
    """(features, pyradiomics' messages, error) of one mask; ``error`` is "" on success."""
    handler = _Messages()
    logger = logging.getLogger("radiomics")
    logger.addHandler(handler)
    try:
        result = extractor.execute(image, mask)
    except Exception as err:  # pyradiomics' checkMask raises ValueError for a too small ROI
        return {}, handler.lines, f"{type(err).__name__}: {' '.join(str(err).split())}"
    finally:
        logger.removeHandler(handler)
    values = {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}
    return values, handler.lines, ""


_EXTRACTORS: dict = {}


def _extractor(params_path: str, region: str):
    key = (params_path, params_sha256(params_path), region)  # an edited file is re-read
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = make_extractor(params_path, region)
    return _EXTRACTORS[key]


def extract_patient(center: str, pid: str, image_path, tumor_path, ring_path, params_path,
                    rule: str = DEFAULT_RULE, n_lesions: int | None = None) -> list[dict]:
    """Features of the target lesion and of the ring of one patient: one raw record per region
    (``values``, ``messages``, ``error``). Bad input (missing or misaligned masks, an empty
    tumor mask, a lesion count that disagrees with lesions.tsv) is an :class:`InputError`."""
    image = sitk.ReadImage(str(image_path))
    tumor_img = read_mask(tumor_path, image, what="tumor", center=center, patient=pid)
    ring_img = read_mask(ring_path, image, what="ring", center=center, patient=pid)
    tumor = sitk.GetArrayFromImage(tumor_img).astype(bool)
    if not tumor.any():
        raise InputError("tumor mask is empty", center=center, patient=pid, path=tumor_path,
                         fix="provide the tumor segmentation, or exclude the patient")
    try:
        target, n = target_lesion(tumor, image.GetSpacing()[::-1], rule)
    except KeyError:
        raise InputError(f"unknown target lesion rule {rule!r}", center=center, patient=pid,
                         fix="use longest_axial_diameter or largest_volume (tumor.target_lesion)"
                         ) from None
    if n_lesions is not None and n != n_lesions:
        raise InputError(f"the tumor mask has {n} lesion(s) but lesions.tsv says {n_lesions}",
                         center=center, patient=pid, path=tumor_path,
                         fix="re-run the tumor stage on the current ingest outputs")
    masks = {"lesion": array_image(target, image), "ring": ring_img}
    records = []
    for region in REGIONS:
        if not sitk.GetArrayViewFromImage(masks[region]).any():
            values, messages, error = {}, [], f"the {region} mask is empty"
        else:
            values, messages, error = extract_region(_extractor(str(params_path), region), image,
                                                     masks[region])
        records.append({"patient_id": pid, "region": region, "values": values,
                        "messages": messages, "error": error})
    return records


def _worker_init():
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def _extract_job(job: tuple) -> list[dict]:
    return extract_patient(*job)


# ------------------------------------------------------------------ the center


def _reason(record: dict, columns: list[str]) -> str:
    """Why a row holds NA: the failure, or which features are NaN or were not computed."""
    if record["error"]:
        return record["error"]
    values = record["values"]
    missing = [c for c in columns if c not in values]
    nan = [c for c in columns if c in values and not np.isfinite(values[c])]
    parts = []
    if nan:
        parts.append(f"{len(nan)} feature(s) NaN (first: {nan[0]})")
    if missing:
        parts.append(f"{len(missing)} feature(s) not computed (first: {missing[0]})")
    if parts and record["messages"]:
        parts.append(f"pyradiomics: {record['messages'][0]}")
    return "; ".join(parts)


def _columns(records: list[dict]) -> list[str]:
    """Feature columns: the richest row's order (pyradiomics'), then any others as first seen."""
    if not records:
        return []
    richest = max(records, key=lambda r: len(r["values"]))
    columns = list(richest["values"])
    seen = set(columns)
    for r in records:
        for k in r["values"]:
            if k not in seen:
                columns.append(k)
                seen.add(k)
    return columns


def read_target_rules(lesions_tsv, center: str) -> dict[str, tuple[str, int]]:
    """patient_id -> (target_lesion_rule, n_lesions) of the tumor stage's lesions.tsv."""
    table = read_tsv(lesions_tsv, required=("patient_id", "target_lesion_rule", "n_lesions"),
                     what="lesions table")
    return {pid: (str(rule), int(n)) for pid, rule, n in
            zip(table["patient_id"], table["target_lesion_rule"], table["n_lesions"])}


def extract_center(center: str, images_dir, tumor_dir, rings_dir, lesions_tsv, params_path,
                   out_tsv=None, sidecar_path=None,
                   threads: int = 1) -> pd.DataFrame:
    """pyradiomics features of every ingested patient of a center: target lesion and ring.

    Reads ``images_dir/{pid}.nii.gz`` (ingested HU), ``tumor_dir/{pid}.nii.gz`` (all lesions
    = 1) and ``rings_dir/{pid}.nii.gz`` (the tumor stage's ring). The target lesion is the
    tumor stage's (mtnet.tumor.measure: 26-connected lesions, ``target_lesion_rule`` of
    ``lesions_tsv``, else the longest axial diameter). Writes ``out_tsv`` (patient_id,
    region = lesion | ring, reason, one column per feature with pyradiomics' names; a
    region whose extraction failed, e.g. a lesion too small for a texture class, holds NA
    and the reason) and ``sidecar_path`` (JSON: pyradiomics version, the parameters'
    sha256, counts). Rows are sorted by patient_id, lesion before ring. ``threads`` > 1
    extracts patients in that many worker processes (same numbers).
    """
    images_dir, tumor_dir, rings_dir = Path(images_dir), Path(tumor_dir), Path(rings_dir)
    params = validate_params(params_path)  # a bad file fails before any patient is read
    pids = patient_ids(images_dir)
    if not pids:
        raise InputError("no ingested images", center=center, path=images_dir,
                         fix="check the ingest stage's output")
    rules = read_target_rules(lesions_tsv, center) if lesions_tsv else {}
    jobs = []
    for pid in pids:
        if lesions_tsv and pid not in rules:
            raise InputError("patient has an image but no row in lesions.tsv", center=center,
                             patient=pid, path=lesions_tsv, fix="re-run the tumor stage")
        rule, n = rules.get(pid, (DEFAULT_RULE, None))
        jobs.append((center, pid, images_dir / f"{pid}{NIFTI}", tumor_dir / f"{pid}{NIFTI}",
                     rings_dir / f"{pid}{NIFTI}", str(params_path), rule, n))

    threads = max(1, int(threads))
    if threads > 1 and len(jobs) > 1:
        # fork, not spawn: a Snakemake script has no __main__ guard for spawn to re-import;
        # the parent has read no image yet, so no ITK thread runs when it forks
        with ProcessPoolExecutor(min(threads, len(jobs)), mp_context=get_context("fork"),
                                 initializer=_worker_init) as pool:
            records = [r for rs in pool.map(_extract_job, jobs) for r in rs]
    else:
        records = [r for job in jobs for r in _extract_job(job)]

    columns = _columns(records)
    # a region is expected to have what its richest row has (the ring has no shape class)
    expected = {region: _columns([r for r in records if r["region"] == region])
                for region in REGIONS}
    rows = []
    for r in records:
        reason = _reason(r, expected[r["region"]])
        if reason:
            log.warning("center %s, patient %s, %s: %s", center, r["patient_id"], r["region"], reason)
        rows.append({"patient_id": r["patient_id"], "region": r["region"], "reason": reason,
                     **{c: r["values"].get(c, np.nan) for c in columns}})
    table = pd.DataFrame(rows, columns=ID_COLUMNS + columns)
    if out_tsv is not None:
        write_tsv(table, out_tsv)
    if sidecar_path is not None:
        write_sidecar(sidecar_path, center, params_path, params, table)
    log.info("center %s: %d patient(s), %d feature column(s), %d region(s) with NA", center,
             len(pids), len(columns), int((table["reason"] != "").sum()))
    return table


def write_sidecar(path, center: str, params_path, params: dict, table: pd.DataFrame) -> dict:
    """The provenance JSON beside radiomics.tsv."""
    import pywt
    import radiomics

    features = [c for c in table.columns if c not in ID_COLUMNS]
    per_region = {}
    for region in REGIONS:
        rows = table[table["region"] == region]
        values = rows[features]
        per_region[region] = {
            "features": int(values.notna().any().sum()),
            "rows_with_na": int((rows["reason"] != "").sum()),
            "rows_failed": int(values.isna().all(axis=1).sum()),
        }
    info = {
        "center": center,
        "pyradiomics_version": radiomics.__version__,
        "params_path": str(params_path),
        "params_sha256": params_sha256(params_path),
        "params": params,
        "ring_excluded_classes": list(RING_EXCLUDED_CLASSES),
        "regions": per_region,
        "n_patients": int(table["patient_id"].nunique()),
        "versions": {"SimpleITK": sitk.Version_VersionString(), "numpy": np.__version__,
                     "PyWavelets": pywt.__version__, "python": platform.python_version()},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(info, indent=2, default=str) + "\n")
    return info


def read_features(path, center: str | None = None) -> pd.DataFrame:
    """A center's radiomics.tsv (long: one row per patient and region)."""
    df = read_tsv(path, text_columns=("patient_id", "region", "reason"), required=ID_COLUMNS,
                  what="radiomics features table")
    df["reason"] = df["reason"].fillna("")
    return df


def wide_features(tables: dict, regions=REGIONS) -> pd.DataFrame:
    """{center: long table or path} -> one row per patient: ``patient_id``, ``center``, then
    ``{region}_{feature}`` for each region; a column NA in every row (e.g. the ring's shape,
    never extracted) is left out."""
    frames = []
    for center, table in tables.items():
        df = table if isinstance(table, pd.DataFrame) else read_features(table, center)
        parts = []
        for region in regions:
            rows = df[df["region"] == region].drop(columns=["region", "reason"])
            dup = rows["patient_id"].duplicated()
            if dup.any():
                raise InputError(f"patient listed twice for region {region}", center=center,
                                 patient=rows.loc[dup, "patient_id"].iloc[0])
            parts.append(rows.set_index("patient_id").add_prefix(f"{region}_"))
        wide = pd.concat(parts, axis=1, join="outer").sort_index()
        wide.index.name = "patient_id"
        wide.insert(0, "center", center)
        frames.append(wide.reset_index())
    out = pd.concat(frames, ignore_index=True, sort=False)
    return out.dropna(axis=1, how="all")
