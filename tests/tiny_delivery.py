"""Copies of a `tiny` synthetic center's delivery, to damage as a hospital would deliver them.

:func:`generate` writes a tiny center once (mtnet.synth.write_center, a few patients);
:func:`copy` makes a `source: files` delivery of it under a new center name;
:func:`ingest` runs the workflow's ingestion of a delivery in-process and returns what it
wrote (or the InputError). Images and tables are read and written with the project's own
readers (SimpleITK, pandas) so that a damage is exactly the one described.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import yaml

from mtnet.errors import InputError
from mtnet.io import ingest_center
from mtnet.synth import write_center

SPACING = [3.0, 3.0, 3.0]  # coarse: the checks, not the resampling, are under test


def generate(root: Path, center: str, role: str = "external", n: int = 4, **formats) -> Path:
    """A tiny synthetic center's data folder (its truth beside it, never read here)."""
    data = root / center / "data"
    write_center({"preset": "tiny", "center": center, "role": role, "n_patients": n,
                  "n_events": 1, **formats}, 7, data, root / center / "truth")
    return data


def copy(data: Path, root: Path, name: str) -> Path:
    """A copy of a delivery, described by its center.yaml (paths relative to the copy)."""
    target = root / name / "data"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(data, target)
    return target


def entry(data: Path) -> dict:
    return yaml.safe_load((data / "center.yaml").read_text())


def set_entry(data: Path, **changes) -> None:
    e = entry(data)
    for key, value in changes.items():
        if value is None:
            e.pop(key, None)
        else:
            e[key] = value
    (data / "center.yaml").write_text(yaml.safe_dump(e))


def patients(data: Path) -> list[str]:
    return sorted(read_table(data)["patient_id"].astype(str))


# ------------------------------------------------------------------ reading and writing


def image_path(data: Path, pid: str) -> Path:
    return data / entry(data)["images"] / f"{pid}.nii.gz"


def mask_path(data: Path, pid: str, kind: str = "tumor") -> Path:
    return data / entry(data)[f"{kind}_masks"] / f"{pid}.nii.gz"


def rewrite(path: Path, change, dtype=None) -> None:
    """Apply ``change`` to the (z, y, x) array of a NIfTI, keeping its grid."""
    img = sitk.ReadImage(str(path))
    arr = change(sitk.GetArrayFromImage(img))
    out = sitk.GetImageFromArray(np.ascontiguousarray(arr if dtype is None else arr.astype(dtype)))
    out.CopyInformation(img)
    sitk.WriteImage(out, str(path), True)


def table_path(data: Path) -> Path:
    return data / entry(data)["clinical"]


def read_table(data: Path) -> pd.DataFrame:
    e, path = entry(data), table_path(data)
    if path.suffix == ".xlsx":
        return pd.read_excel(path, sheet_name=e.get("clinical_sheet", 0), dtype={"patient_id": str})
    return pd.read_csv(path, dtype={"patient_id": str})


def write_csv(data: Path, table: pd.DataFrame, name: str = "clinical.csv", **kw) -> Path:
    """The table as a CSV delivery (the center.yaml points to it, sheet dropped)."""
    path = data / name
    table.to_csv(path, index=False, **kw)
    set_entry(data, clinical=name, clinical_sheet=None)
    return path


# ------------------------------------------------------------------ ingestion


@dataclass
class Outcome:
    error: InputError | None
    out: Path

    @property
    def exclusions(self) -> pd.DataFrame:
        return pd.read_csv(self.out / "exclusions.tsv", sep="\t", dtype=str, keep_default_na=False)

    @property
    def qc(self) -> pd.DataFrame:
        return pd.read_csv(self.out / "qc.tsv", sep="\t", dtype=str, keep_default_na=False)

    @property
    def clinical(self) -> pd.DataFrame:
        return pd.read_csv(self.out / "clinical.tsv", sep="\t", dtype=str, keep_default_na=False)

    def reason(self, pid: str) -> str:
        rows = self.exclusions[self.exclusions.patient_id == pid]
        assert len(rows) == 1, (pid, self.exclusions.values.tolist())
        return rows.reason.iloc[0]

    def digest(self, pid: str) -> dict[str, str]:
        """SHA-256 of one patient's ingested files, and its clinical.tsv row (but the center)."""
        files = {k: hashlib.sha256((self.out / k / f"{pid}.nii.gz").read_bytes()).hexdigest()
                 for k in ("images", "tumor") if (self.out / k / f"{pid}.nii.gz").exists()}
        row = self.clinical[self.clinical.patient_id == pid].drop(columns="center")
        files["clinical"] = row.to_csv(index=False)
        return files


def ingest(data: Path, root: Path, name: str, **ingest_settings) -> Outcome:
    out = root / "results" / name
    if out.exists():
        shutil.rmtree(out)
    outputs = {k: str(out / k) for k in ("images", "tumor", "liver")}
    outputs.update(clinical=str(out / "clinical.tsv"), qc=str(out / "qc.tsv"),
                   montage=str(out / "qc_montage.png"))
    settings = {"ingest": {"spacing_mm": SPACING, **ingest_settings}}
    try:
        ingest_center(name, {"data": str(data)}, outputs, settings)
    except InputError as err:
        return Outcome(err, out)
    return Outcome(None, out)
