"""Reading images and masks, and checking that a mask lies on its image's grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mtnet.errors import InputError

NIFTI = ".nii.gz"


def patient_ids(folder: str | Path) -> list[str]:
    """Patient IDs of the ``{pid}.nii.gz`` files in a folder, sorted."""
    return sorted(p.name[: -len(NIFTI)] for p in Path(folder).glob(f"*{NIFTI}"))


def same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-3) -> bool:
    """Same size, and spacing, origin and direction equal within ``tol`` (mm / cosines)."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol)
    )


def describe_grid(image: sitk.Image) -> str:
    spacing = ",".join(f"{s:g}" for s in image.GetSpacing())
    origin = ",".join(f"{o:.1f}" for o in image.GetOrigin())
    return f"size {'x'.join(map(str, image.GetSize()))}, spacing {spacing} mm, origin {origin}"


def read_mask(path: str | Path, image: sitk.Image, *, what: str, center=None, patient=None) -> sitk.Image:
    """A binary mask (uint8 0/1) that must lie on ``image``'s grid; one-line errors otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} mask is missing", center=center, patient=patient, path=path,
                         fix=f"provide {path.name} for every image")
    mask = sitk.ReadImage(str(path))
    if not same_grid(mask, image):
        raise InputError(
            f"{what} mask is on another grid ({describe_grid(mask)}) than its image "
            f"({describe_grid(image)})",
            center=center, patient=patient, path=path,
            fix="resample the mask onto the ingested image grid",
        )
    out = sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)
    out.CopyInformation(image)
    return out


def voxel_ml(image: sitk.Image) -> float:
    return float(np.prod(image.GetSpacing())) / 1000.0


def mask_image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    """A uint8 mask image from a (z, y, x) array, on the grid of ``like``."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8))
    out.CopyInformation(like)
    return out
