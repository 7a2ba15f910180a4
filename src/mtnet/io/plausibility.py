"""Is a delivered CT what it claims to be? Checks of one patient's image before it is ingested.

Each check returns a :class:`Finding` (or None) that names the likely cause; the center's
``ingest.checks`` section (schema: ``src/mtnet/schemas/config.schema.yaml``) says whether a
finding is an error (the patient is bad: excluded or the center fails, ``ingest.on_bad_patient``)
or a warning in qc.tsv and the log. Thresholds live in the schema only.

- :func:`nifti_scan`: a NIfTI file shorter than its header says (a copy cut short, which
  SimpleITK would read with the missing slices zero-filled), a gzip stream that fails its
  CRC, and NaN or infinite voxels (a float NIfTI; SimpleITK reads them as 0 HU).
- :func:`hu_findings`: a contrast CT in HU has air (at or below ``air_max_hu``) and soft tissue
  whose median lies in ``soft_tissue_hu``; raw stored values (HU + 1024, the RescaleIntercept
  not applied) or a doubled intercept are named as such.
- :func:`orientation_findings`: the anatomy against the declared axes, on the image reoriented
  to LPS (x → Left, y → Posterior, z → Superior) at a coarse spacing: a trunk runs out of the
  image at both ends of its S-I axis only; it is wider (L-R) than deep (A-P); the spine lies
  posterior in the midline; the table, where it is in the field of view and no spine is seen,
  is behind the body (a prone patient lies on it face down); the lung bases, where they are in the scan, are at its superior end. A left-right flip
  leaves no trace in these and is not checked.
- :func:`geometry_finding`: the body's width against the voxel spacing (a spacing in cm).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mtnet.imaging import AIR_HU

AXES = {0: "z (S-I)", 1: "y (A-P)", 2: "x (L-R)"}


@dataclass(frozen=True)
class Finding:
    """What a check found: ``check`` (a key of ``ingest.checks``), the problem (one line,
    with its likely cause) and the fix."""

    check: str
    problem: str
    fix: str


# ------------------------------------------------------------------ the file


def nifti_scan(path) -> tuple[Finding | None, np.ndarray | None]:
    """Read a NIfTI's every byte as nibabel does (the gzip stream to its end, so its CRC and
    length are checked): a finding when the file is cut short or corrupt, and the mask of its
    NaN / infinite voxels in SimpleITK's (z, y, x) order (None when it has none or cannot be
    read; SimpleITK itself reads NaN as 0 and a short file zero-filled)."""
    import nibabel as nib

    path = Path(path)
    fix = "deliver the complete file again (check its size and checksum against the source)"
    if path.stat().st_size == 0:
        return Finding("truncated", "the file is empty (0 bytes)", fix), None
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
    except EOFError:
        return Finding("truncated", "the gzip stream ends early: the file was cut short", fix), None
    except (gzip.BadGzipFile, zlib.error) as err:
        return Finding("truncated", f"the gzip stream is corrupt ({' '.join(str(err).split())[:80]})",
                       fix), None
    kind = nib.Nifti2Image if raw[:4] in (b"\x1c\x02\x00\x00", b"\x00\x00\x02\x1c") else nib.Nifti1Image
    try:
        data = np.asanyarray(kind.from_bytes(raw).dataobj)
    except OSError as err:  # nibabel: "Expected N bytes, got M bytes"
        text = " ".join(str(err).split()).split(" from ")[0]
        return Finding("truncated", f"the file is shorter than its header says ({text}): a copy "
                                    f"cut short", fix), None
    except Exception:  # noqa: BLE001 - not a NIfTI nibabel reads: SimpleITK says what it cannot
        return None, None
    if data.dtype.kind not in "fc":
        return None, None
    bad = ~np.isfinite(data)
    if not bad.any():
        return None, None
    return None, np.ascontiguousarray(bad.reshape(bad.shape[:3]).T)


def nonfinite(bad: np.ndarray) -> Finding:
    """The finding of an image with NaN or infinite voxels (``bad``: their mask)."""
    n = int(bad.sum())
    return Finding("nonfinite", f"{n} voxel(s) are NaN or infinite ({n / bad.size:.1%} of the "
                                f"image; read as 0 HU they would pass for water)",
                   "export the image without NaN (or set ingest.checks.nonfinite: warn to read "
                   "them as air, -1024 HU)")


# ------------------------------------------------------------------ the values


def coarse(image: sitk.Image, spacing_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The image reoriented to LPS and subsampled to about ``spacing_mm``: the (z, y, x) array
    and its voxel size (z, y, x) in mm."""
    image = sitk.DICOMOrient(image, "LPS") if image.GetDirection() != (1, 0, 0, 0, 1, 0, 0, 0, 1) \
        else image
    spacing = np.array(image.GetSpacing())
    step = np.maximum(1, np.round(spacing_mm / spacing)).astype(int)
    array = sitk.GetArrayViewFromImage(image)[::step[2], ::step[1], ::step[0]]
    return np.array(array, dtype=np.float32), (spacing * step)[::-1]


def hu_findings(array: np.ndarray, settings: dict) -> tuple[dict, Finding | None]:
    """Air and soft tissue of a CT (``array`` in HU, padding at -1024): the measures for qc.tsv
    (air_fraction, soft_tissue_hu) and a finding naming the likely cause when implausible."""
    from skimage.filters import threshold_otsu

    air_max = float(settings["air_max_hu"])
    lo, hi = (float(v) for v in settings["soft_tissue_hu"])
    finite = array[np.isfinite(array)]
    air_fraction = float(np.mean(finite <= air_max)) if finite.size else 0.0
    # padding and clipped air (-1024) take part: a doubled intercept leaves little else
    valid = np.clip(finite, AIR_HU, 4000)
    if valid.size < 10 or np.ptp(valid) == 0:
        tissue = float(np.median(valid)) if valid.size else float("nan")
    else:
        cut = threshold_otsu(valid)
        tissue = float(np.median(valid[valid > cut]))
    measures = {"air_fraction": round(air_fraction, 4), "soft_tissue_hu": round(tissue, 1)}
    no_air = air_fraction < float(settings["min_air_fraction"])
    off = not lo <= tissue <= hi
    if not (no_air or off):
        return measures, None
    found = []
    if no_air:
        found.append(f"no air ({air_fraction:.1%} of voxels at or below {air_max:g} HU)")
    if off:
        found.append(f"soft-tissue median {tissue:.0f} HU (expected {lo:g} to {hi:g})")
    if off and no_air and lo <= tissue + AIR_HU <= hi:
        cause = "the values look like stored values without the RescaleIntercept (HU + 1024)"
        fix = "deliver HU (stored value x RescaleSlope + RescaleIntercept, usually - 1024)"
    elif off and lo <= tissue - AIR_HU <= hi:
        cause = "the values look shifted by -1024 HU (the RescaleIntercept applied twice?)"
        fix = "deliver HU: apply RescaleSlope and RescaleIntercept once"
    elif off:
        cause = "not a CT in HU (a wrong RescaleSlope, another modality, a probability map?)"
        fix = "deliver the portal-phase CT in HU"
    else:
        cause = "an image cropped to the body, or air clipped away?"
        fix = ("deliver the full field of view, or set ingest.checks.hu.min_air_fraction: 0 "
               "for images without air")
    return measures, Finding("hu", f"HU implausible for a contrast CT: {' and '.join(found)}: "
                                   f"{cause}", fix + " (or set ingest.checks.hu.action: warn)")


# ------------------------------------------------------------------ the anatomy


def _largest(mask: np.ndarray):
    from scipy import ndimage as ndi

    labels, n = ndi.label(mask)
    if n == 0:
        return labels, 0, 0, np.zeros(1, int)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels, n, int(sizes.argmax()), sizes


def orientation_findings(array: np.ndarray, voxel_mm, settings: dict) -> tuple[str, Finding | None]:
    """The anatomy of a CT (``array``: LPS (z, y, x), HU, coarse; ``voxel_mm`` (z, y, x)) against
    its axes (module docstring). Returns the qc.tsv summary (``ok``, ``not assessable: ...``
    or the findings) and a finding when the axes look swapped or flipped."""
    voxel_mm = np.asarray(voxel_mm, float)
    labels, n, body_label, sizes = _largest(array > float(settings["body_hu"]))
    if n == 0 or sizes[body_label] * voxel_mm.prod() < 1e6:  # under a litre: no trunk
        return "not assessable: no body of a litre or more above body_hu", None
    body = labels == body_label
    ends, extent = [], []
    for ax in range(3):
        area = body.sum(axis=tuple(i for i in range(3) if i != ax)).astype(float)
        ends.append(min(area[0], area[-1]) / area.max())
        idx = np.flatnonzero(area)
        extent.append((idx[0], idx[-1]))
    found: list[str] = []
    cut = int(np.argmax(ends))
    min_end = float(settings["min_end_fraction"])
    if ends[cut] >= min_end and cut != 0 and ends[0] < min_end:
        hint = " (an array stored (S, P, L) under an RAS or LPS header?)" if cut == 2 else ""
        found.append(f"the body runs out of the image at both ends of {AXES[cut]} as a trunk does "
                     f"along S-I, and not along z: axes z and {AXES[cut].split()[0]} look "
                     f"swapped{hint}")
    else:
        (y0, y1), (x0, x1) = extent[1], extent[2]
        depth, width = (y1 - y0 + 1) * voxel_mm[1], (x1 - x0 + 1) * voxel_mm[2]
        if width / depth < float(settings["min_width_depth_ratio"]):
            found.append(f"the body is deeper ({depth:.0f} mm along y, A-P) than wide ({width:.0f} "
                         f"mm along x, L-R): axes x and y look swapped")
        else:
            spine = _spine_position(array, body, (y0, y1), (x0, x1), settings)
            if spine is not None and spine < float(settings["spine_anterior_max"]):
                found.append(f"the spine lies in the front of the body ({spine:.0%} of its depth "
                             f"from the front): y (A-P) looks flipped")
            # the table is behind a supine patient, in front of a prone one: it speaks only
            # where the spine cannot
            table = None if spine is not None else _table_position(labels, n, body_label, sizes,
                                                                   voxel_mm, (y0, y1))
            if table is not None and table < 0.5:
                found.append("the table lies in front of the body and no spine is seen: y (A-P) "
                             "looks flipped (or the patient lies prone)")
        lungs = _lungs(array, body, settings)
        if lungs == "inferior":
            found.append("the lung bases lie at the inferior end of the scan: the slice order "
                         "(z, S-I) looks reversed")
    if not found:
        return "ok", None
    text = "; ".join(found)
    return text, Finding(
        "orientation", f"orientation implausible for the declared axes: {text}",
        "fix the image's header (direction) or its array order before delivery, e.g. re-export "
        "it from the DICOM series (or set ingest.checks.orientation.action: warn)")


def _spine_position(array, body, ys, xs, settings) -> float | None:
    """Median A-P position (0 = front, 1 = back) of the bone in the body's midline band."""
    (y0, y1), (x0, x1) = ys, xs
    centre, half = (x0 + x1) / 2, 0.15 * (x1 - x0)
    band = np.zeros_like(body)
    band[:, :, int(centre - half): int(centre + half) + 1] = True
    y = np.nonzero((array > float(settings["bone_hu"])) & body & band)[1]
    if y.size < 50:
        return None
    return float((np.median(y) - y0) / max(1, y1 - y0))


def _table_position(labels, n, body_label, sizes, voxel_mm, ys) -> float | None:
    """A-P position (0 = front, 1 = back, relative to the body) of the table: a flat object
    apart from the body through at least 90% of the slices; None where there is none."""
    y0, y1 = ys
    best = None
    for i in range(1, n + 1):
        if i == body_label or sizes[i] * voxel_mm.prod() < 2e4:
            continue
        part = labels == i
        if part.any(axis=(1, 2)).mean() < 0.9:
            continue
        _, y, x = np.nonzero(part)
        if np.ptp(x) * voxel_mm[2] < 1.5 * np.ptp(y) * voxel_mm[1]:
            continue  # not flat: an arm, not a table
        if best is None or sizes[i] > best[0]:
            best = (sizes[i], float((y.mean() - y0) / max(1, y1 - y0)))
    return None if best is None else best[1]


def _lungs(array, body, settings) -> str | None:
    """Where air inside the body (lung bases) concentrates: ``superior``, ``inferior`` or None
    when neither end holds enough of it."""
    from scipy import ndimage as ndi

    filled = np.stack([ndi.binary_fill_holes(s) for s in body])
    inner = filled & (array < -400)
    share = inner.sum(axis=(1, 2)) / np.maximum(filled.sum(axis=(1, 2)), 1)
    q = max(1, len(share) // 4)
    inferior, superior = float(share[:q].mean()), float(share[-q:].mean())
    least = float(settings["lung_min_fraction"])
    if inferior >= least and inferior > 3 * superior:
        return "inferior"
    if superior >= least and superior > 3 * inferior:
        return "superior"
    return None


def geometry_finding(array: np.ndarray, voxel_mm, size_xyz, settings: dict, body_hu: float) -> Finding | None:
    """The body's L-R width against ``settings["body_width_mm"]``: a header's spacing in cm
    (or ten times too large) makes a trunk 3 cm or 3 m wide. Images under
    ``min_voxels_across`` voxels along x or y are not judged."""
    if min(size_xyz[:2]) < int(settings["min_voxels_across"]):
        return None
    labels, n, body_label, sizes = _largest(array > body_hu)
    if n == 0:
        return None
    x = np.flatnonzero((labels == body_label).any(axis=(0, 1)))
    width = (x[-1] - x[0] + 1) * float(voxel_mm[2])
    lo, hi = (float(v) for v in settings["body_width_mm"])
    if lo <= width <= hi:
        return None
    return Finding("geometry", f"implausible body width {width:.0f} mm (expected {lo:g}-{hi:g} mm "
                               f"for a trunk): the header's voxel spacing "
                               f"({', '.join(f'{v:g}' for v in voxel_mm[::-1])} mm at the checks' "
                               f"sampling) in the wrong unit?",
                   "correct the voxel spacing in the header (mm), or set "
                   "ingest.checks.geometry.action: warn")


def mask_in_air(mask: np.ndarray, array: np.ndarray, body_hu: float) -> float:
    """Fraction of a mask's voxels where the image is air (below ``body_hu``)."""
    inside = mask.astype(bool)
    total = int(inside.sum())
    return float(np.count_nonzero(array[inside] < body_hu)) / total if total else 0.0
