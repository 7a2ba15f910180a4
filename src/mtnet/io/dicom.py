"""DICOM CT series: discovery in an unsorted folder, portal-phase pick, loading to HU.

A patient's folder may hold several series, in any order and sub-folder, mixed with
non-image objects (DICOM-SEG, structured reports, localizers): :func:`scan_folder` groups
the image files by SeriesInstanceUID and sets the rest aside. :func:`pick_series` chooses the
portal-venous series by the center's rules and says why. :func:`load_series` stacks the
slices along the slice normal n = r × c (r, c: ImageOrientationPatient row and column
cosines), drops stray slices (another orientation, size or in-plane origin) with a warning
that names them, refuses gantry tilt, checks the slice spacing and converts stored values to
Hounsfield units, HU = stored · RescaleSlope + RescaleIntercept, with padding
(PixelPaddingValue / PixelPaddingRangeLimit, or anything below -1024) set to -1024 (air).

Only geometry and acquisition parameters leave this module (spacing, orientation, series
number and description, kVp, kernel); no identifying header is ever returned.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from mtnet.errors import InputError
from mtnet.imaging import AIR_HU

log = logging.getLogger(__name__)

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
# Non-image SOP classes met in real archives (SEG, SR, RT, presentation states, KO, raw data).
NON_IMAGE_PREFIXES = (
    SEG_SOP_CLASS,
    "1.2.840.10008.5.1.4.1.1.88.",  # structured reports
    "1.2.840.10008.5.1.4.1.1.481.",  # RT objects
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, spatial registration, SEG
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated PDF/CDA
)
PORTAL_PATTERN = re.compile(r"portal|venous|\bpv\b", re.IGNORECASE)
ORIENTATION_TOL = 1e-3
TILT_TOL_DEG = 0.01


@dataclass
class Series:
    """Image files of one series (headers only, pixels not read)."""

    uid: str
    number: int | None
    description: str
    files: list[Path] = field(default_factory=list)
    headers: list[pydicom.Dataset] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"series {self.number} '{self.description}' ({len(self.files)} files)"


@dataclass
class FolderScan:
    series: dict[str, Series]
    skipped: list[str]  # "file: why" for every file that is not part of an image series
    damaged: list[str] = field(default_factory=list)  # "file: why": a CT file that cannot be read


IMAGE_STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage and Enhanced CT


def _has_preamble(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(128)
        return fh.read(4) == b"DICM"


@dataclass
class LoadedSeries:
    """A series stacked into a volume: ``image`` float32 HU on the series' own grid."""

    image: sitk.Image
    series_uid: str
    shape_xyz: tuple[int, int, int]
    spacing_xyz: tuple[float, float, float]
    slices: int
    dropped: list[str]
    warnings: list[str]
    resampled_slices: bool
    acquisition: dict


def _is_image(ds: pydicom.Dataset) -> str | None:
    """None when ``ds`` is a single-frame image slice, else why it is set aside."""
    sop = str(ds.get("SOPClassUID", ""))
    if any(sop.startswith(p) for p in NON_IMAGE_PREFIXES):
        return f"non-image object (SOP class {sop})"
    image_type = [str(t).upper() for t in ds.get("ImageType", [])]
    if "LOCALIZER" in image_type:
        return "localizer"
    for key in ("Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if key not in ds:
            return f"no {key}"
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return "multi-frame object (not a CT slice)"
    return None


def scan_folder(folder: Path) -> FolderScan:
    """Group every image file under ``folder`` (recursively, any order) by series."""
    series: dict[str, Series] = {}
    skipped: list[str] = []
    damaged: list[str] = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, TypeError, EOFError) as err:
            if _has_preamble(path):  # a DICOM file, cut short or corrupt
                damaged.append(f"{path.name}: unreadable ({' '.join(str(err).split())[:80]})")
            else:
                skipped.append(f"{path.name}: not DICOM")
            continue
        why = _is_image(ds)
        sop = str(ds.get("SOPClassUID", "") or getattr(ds.get("file_meta"), "MediaStorageSOPClassUID", ""))
        if why and why.startswith("no ") and sop.startswith(IMAGE_STORAGE_PREFIX):
            damaged.append(f"{path.name}: a CT image without {why[3:]} (cut short?)")
            continue
        if why:
            skipped.append(f"{path.name}: {why}")
            continue
        uid = str(ds.get("SeriesInstanceUID", "unknown"))
        number = ds.get("SeriesNumber")
        s = series.setdefault(
            uid,
            Series(uid, None if number in (None, "") else int(number), str(ds.get("SeriesDescription", ""))),
        )
        s.files.append(path)
        s.headers.append(ds)
    return FolderScan(series, skipped, damaged)


# ------------------------------------------------------------------ phase pick


def pick_series(
    scan: FolderScan,
    phase: dict | None = None,
    override_uid: str | None = None,
    *,
    center=None,
    patient=None,
    path=None,
) -> tuple[Series, str]:
    """The portal-phase series and the reason it was picked.

    Rules, first that applies: per-patient override (SeriesInstanceUID), the center's
    ``phase.series_number``, its ``phase.series_description`` regular expression, the only
    image series, the one series whose description says portal/venous/PV. Anything else is
    an error listing the series found.
    """
    phase = phase or {}
    candidates = list(scan.series.values())
    listing = "; ".join(s.label for s in sorted(candidates, key=lambda s: (s.number or 0, s.uid)))
    if not candidates:
        raise InputError("no CT image series found", center=center, patient=patient, path=path,
                         fix="put the patient's DICOM series in this folder")

    def one(matches: list[Series], rule: str) -> Series:
        if len(matches) == 1:
            return matches[0]
        what = "no series" if not matches else f"{len(matches)} series"
        raise InputError(
            f"{what} match {rule} (found: {listing})", center=center, patient=patient, path=path,
            fix="adjust the center's phase rule or add a per-patient override",
        )

    if override_uid:
        s = one([s for s in candidates if s.uid == override_uid], "the override's SeriesInstanceUID")
        return s, f"per-patient override (series {s.number})"
    if "series_number" in phase:
        n = int(phase["series_number"])
        s = one([s for s in candidates if s.number == n], f"phase.series_number {n}")
        return s, f"phase.series_number = {n}"
    if "series_description" in phase:
        rx = re.compile(phase["series_description"], re.IGNORECASE)
        s = one([s for s in candidates if rx.search(s.description)],
                f"phase.series_description /{phase['series_description']}/")
        return s, f"description matches /{phase['series_description']}/"
    if len(candidates) == 1:
        return candidates[0], "only image series"
    portal = [s for s in candidates if PORTAL_PATTERN.search(s.description)]
    if len(portal) == 1:
        return portal[0], "only series whose description says portal/venous/PV"
    raise InputError(
        f"{len(candidates)} image series and no rule picks one (found: {listing})",
        center=center, patient=patient, path=path,
        fix="set the center's phase.series_number or phase.series_description, or add an override",
    )


# ------------------------------------------------------------------ loading


def _vec(values) -> np.ndarray:
    return np.asarray([float(v) for v in values], dtype=float)


def _as_stored(value: int, raw: np.ndarray) -> int:
    """A US/SS-ambiguous tag value read as unsigned (e.g. 63536) in the pixels' signed type."""
    if np.issubdtype(raw.dtype, np.signedinteger) and value > np.iinfo(raw.dtype).max:
        return value - (1 << (8 * raw.dtype.itemsize))
    return value


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    """Stored values → HU, padding → -1024 (PS3.3 C.7.5.1.1.2 Pixel Padding Value)."""
    raw = ds.pixel_array
    if raw.ndim != 2:
        raise ValueError(f"expected a 2D slice, got shape {raw.shape}")
    pad = np.zeros(raw.shape, dtype=bool)
    pad_value = ds.get("PixelPaddingValue")
    if pad_value is not None:
        limit = ds.get("PixelPaddingRangeLimit")
        pad_value = _as_stored(int(pad_value), raw)
        if limit is None:
            pad = raw == pad_value
        else:
            lo, hi = sorted((pad_value, _as_stored(int(limit), raw)))
            pad = (raw >= lo) & (raw <= hi)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    hu = raw.astype(np.float32) * slope + intercept
    hu[pad | (hu < AIR_HU)] = AIR_HU
    return hu


def acquisition_parameters(ds: pydicom.Dataset) -> dict:
    """The acquisition parameters that may be written after ingestion (no identifiers)."""
    def get(key):
        v = ds.get(key)
        return None if v in (None, "") else str(v)

    return {
        "kvp": get("KVP"),
        "kernel": get("ConvolutionKernel"),
        "slice_thickness_mm": get("SliceThickness"),
        "manufacturer_model": get("ManufacturerModelName"),
    }


class _Drops:
    """Slices set aside while stacking, each with a warning naming the file."""

    def __init__(self, series: Series, center, patient):
        self.series, self.center, self.patient = series, center, patient
        self.names: list[str] = []
        self.warnings: list[str] = []

    def drop(self, index: int, why: str) -> None:
        name = self.series.files[index].name
        msg = f"dropped slice {name}: {why}"
        self.names.append(name)
        self.warnings.append(msg)
        log.warning("center %s, patient %s: %s", self.center, self.patient, msg)


def _check_tilt(series: Series, where: dict) -> None:
    tilts = [abs(float(h.get("GantryDetectorTilt", 0) or 0)) for h in series.headers]
    if max(tilts) > TILT_TOL_DEG:
        raise InputError(
            f"gantry tilt of {max(tilts):g} degrees in {series.label}", **where,
            fix="export a tilt-corrected (resliced) series",
        )


def _keep_common_geometry(series: Series, drops: _Drops) -> tuple[list[int], np.ndarray]:
    """Indices of the slices sharing the commonest orientation, size and pixel spacing."""
    keys = [
        (tuple(np.round(_vec(h.ImageOrientationPatient), 3)), int(h.Rows), int(h.Columns),
         tuple(np.round(_vec(h.PixelSpacing), 4)))
        for h in series.headers
    ]
    ref_key = Counter(keys).most_common(1)[0][0]
    iop = _vec(series.headers[keys.index(ref_key)].ImageOrientationPatient)
    keep = []
    for i, (h, key) in enumerate(zip(series.headers, keys)):
        if np.abs(_vec(h.ImageOrientationPatient) - iop).max() > ORIENTATION_TOL:
            drops.drop(i, f"another orientation than the rest of {series.label}")
        elif key[1:] != ref_key[1:]:
            drops.drop(i, f"another size or pixel spacing than the rest of {series.label}")
        else:
            keep.append(i)
    return keep, iop


def _keep_common_origin(series: Series, keep: list[int], row, col, drops: _Drops, where: dict) -> list[int]:
    """Drop a few slices whose in-plane origin (IPP · r, IPP · c) differs from the median;
    many such slices are a tilted (sheared) or mixed stack: an error."""
    ipp = np.array([_vec(series.headers[i].ImagePositionPatient) for i in keep])
    inplane = np.stack([ipp @ row, ipp @ col], axis=1)
    tol = 0.05 * float(_vec(series.headers[keep[0]].PixelSpacing).min())
    shift = np.linalg.norm(inplane - np.median(inplane, axis=0), axis=1)
    off = shift > tol
    if off.sum() > max(1, int(0.1 * len(keep))):
        raise InputError(
            f"{int(off.sum())} of {len(keep)} slices of {series.label} are shifted in-plane "
            f"(up to {shift.max():.2f} mm): gantry tilt or mixed stacks",
            **where, fix="export a tilt-corrected series or separate the stacks",
        )
    for j in np.flatnonzero(off):
        drops.drop(keep[j], f"another in-plane origin than the rest of {series.label}")
    return [k for j, k in enumerate(keep) if not off[j]]


def _sorted_positions(series: Series, keep: list[int], normal, drops: _Drops) -> tuple[list[int], np.ndarray]:
    """Slices sorted by position along the normal, duplicated positions dropped."""
    along = np.array([_vec(series.headers[i].ImagePositionPatient) @ normal for i in keep])
    order = np.argsort(along, kind="stable")
    keep, along = [keep[j] for j in order], along[order]
    dup = np.concatenate([[False], np.diff(along) < 1e-3])
    for j in np.flatnonzero(dup):
        drops.drop(keep[j], "duplicates the position of another slice")
    return [k for j, k in enumerate(keep) if not dup[j]], along[~dup]


def _slice_step(series: Series, keep: list[int], along: np.ndarray, nonuniform_spacing: str,
                drops: _Drops, where: dict) -> tuple[float, bool]:
    """The median slice step; uneven gaps (missing slices) are an error or flagged for resampling."""
    gaps = np.diff(along)
    step = float(np.median(gaps))
    uneven = np.abs(gaps - step) > max(0.01 * step, 0.01)
    if not uneven.any():
        return step, False
    j = int(np.flatnonzero(uneven)[0])
    what = (
        f"non-uniform slice spacing in {series.label}: {int(uneven.sum())} gap(s) differ from "
        f"{step:g} mm, first {gaps[j]:g} mm after slice {series.files[keep[j]].name} "
        f"(missing slices?)"
    )
    if nonuniform_spacing != "resample":
        raise InputError(what, **where,
                         fix="supply the missing slices, or set ingest.nonuniform_spacing: resample")
    drops.warnings.append(what + "; resampled to uniform spacing")
    log.warning("center %s, patient %s: %s; resampling", drops.center, drops.patient, what)
    return step, True


def _read_hu(path: Path, where: dict) -> np.ndarray:
    ds = None
    try:
        ds = pydicom.dcmread(path)
        return _hu(ds)
    except Exception as err:  # decoder missing or corrupt file: name it
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "?")
        raise InputError(
            f"cannot decode pixel data of {path.name} (transfer syntax {syntax}): "
            f"{' '.join(str(err).split())[:200]}",
            **where, fix="check the file or install its decoder",
        ) from None


def load_series(
    series: Series,
    nonuniform_spacing: str = "error",
    *,
    center=None,
    patient=None,
    path=None,
) -> LoadedSeries:
    """Stack a series into a float32 HU volume on its own grid (see module docstring).

    The grid: spacing (column spacing, row spacing, median slice step), origin the first
    slice's position, direction [r c n] with n = r × c and slices sorted along n.
    """
    where = dict(center=center, patient=patient, path=path)
    drops = _Drops(series, center, patient)
    _check_tilt(series, where)
    keep, iop = _keep_common_geometry(series, drops)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    keep = _keep_common_origin(series, keep, row, col, drops, where)
    keep, along = _sorted_positions(series, keep, normal, drops)
    if len(keep) < 2:
        raise InputError(f"{series.label} has fewer than 2 usable slices", **where)
    step, resampled = _slice_step(series, keep, along, nonuniform_spacing, drops, where)

    volume = np.stack([_read_hu(series.files[k], where) for k in keep])  # (z, y, x)
    if resampled:
        volume, along = _uniform_stack(volume, along, step)
    first = _vec(series.headers[keep[0]].ImagePositionPatient)
    origin = first + (along[0] - float(first @ normal)) * normal
    spacing_rc = _vec(series.headers[keep[0]].PixelSpacing)  # (row spacing = y, column spacing = x)
    image = sitk.GetImageFromArray(volume.astype(np.float32))
    image.SetSpacing((float(spacing_rc[1]), float(spacing_rc[0]), step))
    image.SetOrigin(tuple(float(v) for v in origin))
    image.SetDirection(tuple(float(v) for v in np.column_stack([row, col, normal]).ravel()))
    return LoadedSeries(
        image=image,
        series_uid=series.uid,
        shape_xyz=tuple(int(v) for v in image.GetSize()),
        spacing_xyz=tuple(round(float(v), 4) for v in image.GetSpacing()),
        slices=len(keep),
        dropped=drops.names,
        warnings=drops.warnings,
        resampled_slices=resampled,
        acquisition=acquisition_parameters(series.headers[keep[0]]),
    )


def _uniform_stack(volume: np.ndarray, along: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of slices at positions ``along`` onto a grid of spacing ``step``."""
    n = int(np.floor((along[-1] - along[0]) / step + 1e-6)) + 1
    grid = along[0] + step * np.arange(n)
    hi = np.clip(np.searchsorted(along, grid, side="right"), 1, len(along) - 1)
    lo = hi - 1
    w = ((grid - along[lo]) / (along[hi] - along[lo])).astype(np.float32)[:, None, None]
    out = volume[lo] * (1 - w) + volume[hi] * w
    return out, grid
