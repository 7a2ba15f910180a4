"""NIfTI images and masks as delivered by a hospital (any orientation)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from mtnet.errors import InputError
from mtnet.imaging import AIR_HU



def read_image(path, *, center=None, patient=None) -> tuple[sitk.Image, int]:
    """A CT NIfTI as float32 HU with values below -1024 (padding) set to -1024.

    Returns the image and the number of padded voxels replaced.
    """
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(f"cannot read NIfTI: {' '.join(str(err).split())[:200]}",
                         center=center, patient=patient, path=path) from None
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"expected a 3D single-channel image, got {img.GetDimension()}D",
                         center=center, patient=patient, path=path)
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    pad = arr < AIR_HU
    arr[pad] = AIR_HU
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return out, int(pad.sum())


def read_mask(path, label: int | None = None, *, center=None, patient=None) -> sitk.Image:
    """A mask NIfTI as uint8 0/1: voxels equal to ``label`` (or all non-zero when None)."""
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(f"cannot read mask: {' '.join(str(err).split())[:200]}",
                         center=center, patient=patient, path=path) from None
    if img.GetDimension() != 3:
        raise InputError(f"expected a 3D mask, got {img.GetDimension()}D", center=center,
                         patient=patient, path=path)
    arr = sitk.GetArrayFromImage(img)
    sel = (arr == label) if label is not None else (arr != 0)
    out = sitk.GetImageFromArray(sel.astype(np.uint8))
    out.CopyInformation(img)
    return out
