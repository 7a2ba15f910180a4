"""What a new patient brings, checked at the door: the clinical and radiological factors,
the CT and the tumor mask (by their content, never their names), zips of DICOM files.

Problems are :class:`FieldProblem` lists, one per field, so that the command line prints
the first as one line and the web form shows each next to its field. The factors are
validated by ingestion's own rules (:func:`mtnet.io.clinical.validate`: codes, ranges,
whole numbers), and every factor the model uses must be given: the applet does not impute
a new patient's missing factor, as the workflow does for a center's table.
"""

from __future__ import annotations

import gzip
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mtnet.errors import InputError
from mtnet.factors import CANONICAL, MODEL_FACTORS

# patient IDs become folder names: pseudonymous, no path characters
PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_PATIENT = "patient"
# fields of a patient besides the factors (a batch table's, and the form's uploads)
CT, TUMOR_MASK = "ct", "tumor_mask"
MAX_ZIP_ENTRIES = 20000


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field (a factor, ``ct``, ``tumor_mask``, ``patient_id``, or
    ``model`` / ``form`` for the whole request) and how to fix it."""

    field: str
    problem: str
    fix: str | None = None

    def line(self, label: str | None = None) -> str:
        text = f"{label or self.field}: {self.problem}"
        return text + (f" (fix: {self.fix})" if self.fix else "")


class Refused(InputError):
    """The applet refuses the patient; ``problems`` name each field."""

    def __init__(self, problems: list[FieldProblem], patient: str | None = None):
        self.problems = list(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first.field}: {first.problem}{more}", patient=patient, fix=first.fix)


# ------------------------------------------------------------------ factors


def allowed(column: str) -> str:
    """The allowed values of a factor, as a user reads them."""
    f = CANONICAL[column]
    if f.kind == "code":
        return "one of " + ", ".join(f.codes)
    lo, hi = f.limits or (None, None)
    what = "a whole number" if f.kind == "int" else "a number"
    if lo is not None and hi is not None:
        return f"{what} from {lo:g} to {hi:g}"
    if lo is not None:
        return f"{what} of at least {lo:g}"
    return what


# the form's names of the factors (paper Table 1's terms)
LABELS = {
    "age": "Age (years)", "sex": "Sex", "treatment": "Initial treatment",
    "hbv": "HBV infection", "cirrhosis": "Cirrhosis (CT morphology)",
    "child_pugh": "Child-Pugh class", "bclc": "BCLC stage",
    "max_diameter_mm": "Maximum tumor diameter (mm)", "lesion_number": "Number of lesions",
    "afp_ng_ml": "AFP (ng/mL)", "fusion_lesions": "Fusion lesions",
    "invasive_shape": "Invasive shape", "capsule": "Capsule",
    "capsule_breakthrough": "Capsule breakthrough", "corona_enhancement": "Corona enhancement",
    "corona_low_attenuation": "Anti-corona (peritumoral low attenuation)",
    "mosaic_architecture": "Mosaic architecture", "nodule_in_nodule": "Nodule-in-nodule",
    "enhancement_ratio": "Enhancement ratio",
}


def factor_label(column: str) -> str:
    return LABELS.get(column, column)


def _blank(value) -> bool:
    from mtnet.factors import as_code

    return as_code(value) is None


def check_factors(values: dict, needed) -> list[FieldProblem]:
    """Problems of one patient's factors: each needed factor missing, and whatever
    ingestion's validation finds (unknown code, out of range, not a number) in any
    canonical column given."""
    import pandas as pd

    from mtnet.io import clinical as clin

    problems = [FieldProblem(c, "missing", f"give {allowed(c)}") for c in needed
                if _blank(values.get(c))]
    given = {c: values.get(c) for c in CANONICAL if c != "patient_id"}
    table = pd.DataFrame([{"patient_id": "x", **{c: (None if _blank(v) else v)
                                                  for c, v in given.items()}}])
    table = table.astype(object)
    found = clin.validate(table, center="applet")
    missing = {p.field for p in problems}
    for err in found:
        if err.column and err.column not in missing:
            fix = f"give {allowed(err.column)}" if err.column in MODEL_FACTORS else err.fix
            problems.append(FieldProblem(err.column, err.problem, fix))
    order = {c: i for i, c in enumerate(CANONICAL)}
    return sorted(problems, key=lambda p: order.get(p.field, len(order)))


def check_patient_id(pid) -> list[FieldProblem]:
    if pid is None or PATIENT_ID.match(str(pid)):
        return []
    return [FieldProblem("patient_id", f"{str(pid)[:40]!r} is not a pseudonymous ID of letters, "
                         "digits, '.', '_' and '-' (at most 64)", "give the patient's study ID")]


def read_clinical(path) -> dict:
    """One patient's factors from a JSON object or a CSV (or TSV) with a header and one row."""
    import json

    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise Refused([FieldProblem("clinical", f"file not found: {path}",
                                    "give a CSV row or a JSON object of the factors")])
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise Refused([FieldProblem("clinical", f"not valid JSON: {err}",
                                        "give one JSON object of factor: value")]) from None
        if not isinstance(data, dict):
            raise Refused([FieldProblem("clinical", "the JSON is not an object",
                                        "give one JSON object of factor: value")])
        return {str(k).strip(): v for k, v in data.items()}
    rows = read_table(path)
    if len(rows) != 1:
        raise Refused([FieldProblem("clinical", f"{path.name} has {len(rows)} rows",
                                    "give one patient's row, or score a table with --batch")])
    return {k: (None if pd.isna(v) else v) for k, v in rows.iloc[0].items()}


def read_table(path):
    """A CSV or TSV of patients (everything read as text; empty or NA cells missing)."""
    import pandas as pd

    path = Path(path)
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=["", "NA"],
                         encoding="utf-8-sig")
    except Exception as err:
        raise Refused([FieldProblem("clinical", f"cannot read {path.name}: "
                                    f"{' '.join(str(err).split())[:200]}")]) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def unknown_fields(values: dict, extra=()) -> list[str]:
    """Fields that are neither canonical columns nor ``extra`` (ignored, but worth a word:
    a misspelt factor is otherwise only 'missing')."""
    return [k for k in values if k not in CANONICAL and k not in extra]


# ------------------------------------------------------------------ files by content


def sniff(path) -> str | None:
    """What a file is by its first bytes: ``zip``, ``nifti-gz``, ``nifti``, ``dicom``, or
    None. A NIfTI (1 or 2) is recognised by its header size and magic, gzipped or not."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(544)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(544)
        except (OSError, EOFError):
            return None
        return "nifti-gz" if _nifti_header(head) else None
    return "nifti" if _nifti_header(head) else None


def _nifti_header(head: bytes) -> bool:
    if len(head) >= 348:
        for order in ("little", "big"):
            size = int.from_bytes(head[:4], order)
            if size == 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
                return True
            if size == 540 and len(head) >= 12 and head[4:8] in (b"n+2\x00", b"ni2\x00"):
                return True
    return False


NIFTI_NAMES = {"nifti-gz": ".nii.gz", "nifti": ".nii"}


def check_ct(path) -> tuple[str, list[FieldProblem]]:
    """The kind of an uploaded CT (``zip`` of DICOM files, or a NIfTI) and its problems."""
    kind = sniff(path)
    if kind in ("zip", "nifti-gz", "nifti"):
        return kind, []
    return kind or "unknown", [FieldProblem(
        CT, "neither a zip of DICOM files nor a NIfTI file (judged by its content)",
        "upload the portal-phase series as a .zip of its DICOM files, or as .nii/.nii.gz")]


def check_mask(path) -> tuple[str, list[FieldProblem]]:
    """The kind of an uploaded tumor mask (``dicom``: a DICOM-SEG; or a NIfTI)."""
    kind = sniff(path)
    if kind in ("dicom", "nifti-gz", "nifti"):
        return kind, []
    return kind or "unknown", [FieldProblem(
        TUMOR_MASK, "neither a DICOM-SEG nor a NIfTI file (judged by its content)",
        "upload the tumor mask as a DICOM-SEG (.dcm) or a NIfTI (.nii/.nii.gz) on the CT's grid")]


# ------------------------------------------------------------------ zips


def _unsafe_name(name: str) -> str | None:
    """Why a zip entry's name is refused (None: fine)."""
    if "\x00" in name:
        return "a NUL character"
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in posix.parts:
        return "a '..' component (path traversal)"
    return None


def extract_dicom_zip(path, dest, max_bytes: int, field: str = CT) -> int:
    """Unpack the regular files of a zip into ``dest`` under sequential names (no name from
    the zip reaches the file system); refused: an entry named with an absolute path or
    '..', a link, more than :data:`MAX_ZIP_ENTRIES` entries, or more than ``max_bytes``
    declared (a zip bomb) or actually unpacked. Returns the number of files."""
    fix = "upload a plain zip of the series' DICOM files"
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise Refused([FieldProblem(field, f"not a readable zip ({err})", fix)]) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise Refused([FieldProblem(field, f"the zip has {len(infos)} entries (at most "
                                        f"{MAX_ZIP_ENTRIES})", fix)])
        for info in infos:
            why = _unsafe_name(info.filename)
            if why:
                raise Refused([FieldProblem(field, f"a zip entry's name has {why}", fix)])
            if stat.S_ISLNK(info.external_attr >> 16):
                raise Refused([FieldProblem(field, "the zip holds a symbolic link", fix)])
        declared = sum(i.file_size for i in infos if not i.is_dir())
        if declared > max_bytes:
            raise Refused([FieldProblem(
                field, f"the zip declares {declared / 2**20:.0f} MiB unpacked, more than the "
                f"limit of {max_bytes / 2**20:.0f} MiB", "upload the portal-phase series only")])
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        total, n = 0, 0
        for info in infos:
            if info.is_dir():
                continue
            n += 1
            with archive.open(info) as src, (dest / f"{n:06d}.dcm").open("wb") as out:
                while chunk := src.read(1 << 20):
                    total += len(chunk)
                    if total > max_bytes:  # a header that lies about the size
                        raise Refused([FieldProblem(
                            field, f"the zip unpacks to more than {max_bytes / 2**20:.0f} MiB",
                            "upload the portal-phase series only")])
                    out.write(chunk)
    if n == 0:
        raise Refused([FieldProblem(field, "the zip is empty", fix)])
    return n


def place_ct(source, kind: str, images: Path, pid: str, max_unzipped: int, field: str = CT) -> Path:
    """Put a CT into a delivery's ``images/``: a zip unpacked into ``images/<pid>/``, a DICOM
    folder linked there, a NIfTI copied to ``images/<pid>.nii[.gz]``."""
    images.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        target = images / pid
        target.symlink_to(Path(source).resolve(), target_is_directory=True)
        return target
    if kind == "zip":
        extract_dicom_zip(source, images / pid, max_unzipped, field)
        return images / pid
    target = images / f"{pid}{NIFTI_NAMES[kind]}"
    shutil.copyfile(source, target)
    return target


def place_mask(source, kind: str, masks: Path, pid: str) -> Path:
    masks.mkdir(parents=True, exist_ok=True)
    target = masks / (f"{pid}.dcm" if kind == "dicom" else f"{pid}{NIFTI_NAMES[kind]}")
    shutil.copyfile(source, target)
    return target
