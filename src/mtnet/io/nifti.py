"""NIfTI images and masks as delivered by a hospital (any orientation)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from mtnet.errors import InputError
from mtnet.imaging import AIR_HU


def _read(path, what: str, center, patient) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        detail = " ".join(str(err).split()).split("sitk::ERROR: ")[-1][:160]
        raise InputError(f"cannot read {what}: {detail}", center=center, patient=patient,
                         path=path, fix="deliver it as a readable NIfTI (.nii or .nii.gz)") from None


def read_image(path, *, air: np.ndarray | None = None, center=None, patient=None) -> tuple[sitk.Image, int]:
    """A CT NIfTI as float32 HU with values below -1024 (padding), and the voxels of ``air``
    (a (z, y, x) mask: the NaN the caller accepted), set to -1024.

    Returns the image and the number of padded voxels replaced.
    """
    img = _read(path, "NIfTI", center, patient)
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        got = (f"{img.GetDimension()}D" if img.GetDimension() != 3
               else f"{img.GetNumberOfComponentsPerPixel()} components per voxel")
        raise InputError(f"expected a 3D single-channel image, got {got}", center=center,
                         patient=patient, path=path,
                         fix="deliver one 3D CT volume (the portal phase) per patient")
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    if air is not None and air.shape == arr.shape:
        arr[air] = AIR_HU
    pad = arr < AIR_HU
    arr[pad] = AIR_HU
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return out, int(pad.sum())


def labels_of(arr: np.ndarray) -> list:
    """The distinct non-zero values of a mask array, ascending (ints where they are whole)."""
    if arr.dtype.kind in "ub" and arr.dtype.itemsize == 1:
        counts = np.bincount(arr.ravel(), minlength=256)
        return [int(v) for v in np.flatnonzero(counts) if v]
    values = np.unique(arr[arr != 0])
    return [int(v) if float(v).is_integer() else float(v) for v in values]


def select_label(labels: list, label: int | None, kind: str) -> tuple[list[int] | None, str | None]:
    """Which values of a mask are the structure: (values, warning), or raises ValueError with
    the problem (the caller names the file). Tumor: the configured ``label``; unset, the one
    non-zero label (a warning names it when it is not 1). Liver: the configured label, or every
    non-zero value of a mask with at most two labels (a liver and its tumor)."""
    key = f"{kind}_label"
    odd = [v for v in labels if not float(v).is_integer()]
    if odd:
        raise ValueError(f"mask values are not labels (e.g. {odd[0]:g}): a probability map or a "
                         f"linearly resampled mask?|threshold it, or resample it by nearest neighbour")
    if not labels:
        raise ValueError(f"{kind} mask is empty (no non-zero voxel)|supply the {kind} segmentation, "
                         f"or remove the patient from the delivery")
    if label is not None:
        if label not in labels:
            raise ValueError(f"{key} {label} is not in the mask (labels found: "
                             f"{', '.join(map(str, labels))})|set the center's {key} to one of them")
        return [label], None
    if kind == "tumor":
        if len(labels) == 1:
            value = labels[0]
            note = None if value == 1 else (f"tumor mask labelled 0/{value}: label {value} taken "
                                            f"as the tumor (set the center's tumor_label: {value} "
                                            f"to confirm)")
            return [value], note
        raise ValueError(f"tumor mask holds several labels ({', '.join(map(str, labels))}): which is "
                         f"the tumor?|set the center's tumor_label (e.g. 2 where 1 is the liver)")
    if len(labels) <= 2:
        note = None if labels == [1] else (f"liver mask labels {', '.join(map(str, labels))} "
                                           f"taken together as the liver")
        return labels, note
    raise ValueError(f"liver mask holds {len(labels)} labels ({', '.join(map(str, labels[:6]))}"
                     f"{', ...' if len(labels) > 6 else ''}): a multi-organ segmentation?|set the "
                     f"center's liver_label")


def read_mask(path, label: int | None = None, *, kind: str = "tumor", center=None,
              patient=None) -> tuple[sitk.Image, list, str | None]:
    """A mask NIfTI as uint8 0/1, the label values found in it, and a warning (or None).

    Which values are the structure: :func:`select_label`; a problem is an InputError naming
    the file.
    """
    img = _read(path, "mask", center, patient)
    if img.GetDimension() != 3:
        raise InputError(f"expected a 3D mask, got {img.GetDimension()}D", center=center,
                         patient=patient, path=path, fix="deliver one 3D mask per patient")
    arr = sitk.GetArrayViewFromImage(img)
    labels = labels_of(arr)
    try:
        values, note = select_label(labels, label, kind)
    except ValueError as err:
        problem, fix = str(err).split("|", 1)
        raise InputError(problem, center=center, patient=patient, path=path, fix=fix) from None
    sel = np.isin(arr, values) if len(values) > 1 else arr == values[0]
    out = sitk.GetImageFromArray(sel.astype(np.uint8))
    out.CopyInformation(img)
    return out, labels, note
