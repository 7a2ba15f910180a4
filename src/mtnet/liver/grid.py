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


def read_mask(
    path: str | Path, image: sitk.Image, *, what: str, center=None, patient=None, resample=False
) -> sitk.Image:
    """A binary mask (uint8 0/1) that must lie on ``image``'s grid; one-line errors otherwise.

    With ``resample`` (QC references such as the generator's masks, which keep the
    scanner's grid) a mask on another grid is resampled onto the image's by nearest
    neighbour in physical space; it must still overlap the image.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} mask is missing", center=center, patient=patient, path=path,
                         fix=f"provide {path.name} for every image")
    mask = sitk.ReadImage(str(path))
    if resample and not same_grid(mask, image):
        moved = sitk.Resample(sitk.Cast(mask != 0, sitk.sitkUInt8), image, sitk.Transform(),
                              sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        if sitk.GetArrayViewFromImage(mask).any() and not sitk.GetArrayViewFromImage(moved).any():
            raise InputError(
                f"{what} mask ({describe_grid(mask)}) does not overlap its image "
                f"({describe_grid(image)})",
                center=center, patient=patient, path=path,
                fix="check that the mask belongs to this image",
            )
        mask = moved
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


def mask_image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    """A uint8 mask image from a (z, y, x) array, on the grid of ``like``."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8))
    out.CopyInformation(like)
    return out
