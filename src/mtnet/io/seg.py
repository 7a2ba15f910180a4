"""Tumor masks from DICOM-SEG (read with highdicom), placed on the image's own grid.

A SEG is accepted when it references the picked series (ReferencedSeriesSequence) and its
frames lie on the image's slices: same in-plane orientation, rows, columns and pixel
spacing, and every frame's ImagePositionPatient at an integer voxel index of the image
(within 5% of a voxel; half a slice where the series was resampled to uniform spacing).
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import SimpleITK as sitk

from mtnet.errors import InputError


def _frame_geometry(seg, i: int):
    frame = seg.PerFrameFunctionalGroupsSequence[i]
    shared = seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else None

    def item(name):
        for group in (frame, shared):
            if group is not None and name in group:
                return group[name].value[0]
        return None

    position = item("PlanePositionSequence")
    orientation = item("PlaneOrientationSequence")
    measures = item("PixelMeasuresSequence")
    segment = item("SegmentIdentificationSequence").ReferencedSegmentNumber
    return (
        int(segment),
        np.array([float(v) for v in position.ImagePositionPatient]),
        np.array([float(v) for v in orientation.ImageOrientationPatient]),
        np.array([float(v) for v in measures.PixelSpacing]),
    )


def read_seg_mask(
    path,
    image: sitk.Image,
    segment: int = 1,
    series_uid: str | None = None,
    *,
    slice_tolerance: float = 0.05,
    center=None,
    patient=None,
) -> sitk.Image:
    """The configured ``segment`` of the DICOM-SEG at ``path`` as a uint8 mask on ``image``'s grid."""
    where = dict(center=center, patient=patient, path=path)
    try:
        seg = hd.seg.segread(str(path))
    except Exception as err:
        raise InputError(f"not a readable DICOM-SEG: {' '.join(str(err).split())[:200]}", **where,
                         fix="deliver the complete DICOM-SEG made on this series") from None
    numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
    if segment not in numbers:
        labels = ", ".join(f"{int(s.SegmentNumber)} '{s.SegmentLabel}'" for s in seg.SegmentSequence)
        raise InputError(f"segment {segment} not in the SEG (segments: {labels})", **where,
                         fix="set the center's tumor_segment")
    referenced = [str(r.SeriesInstanceUID) for r in seg.get("ReferencedSeriesSequence", [])]
    if series_uid is not None and referenced and series_uid not in referenced:
        raise InputError(
            "the SEG references another series than the one picked as portal phase", **where,
            fix="check the phase rule or supply the SEG of the picked series",
        )

    size = image.GetSize()
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    if (int(seg.Rows), int(seg.Columns)) != (size[1], size[0]):
        raise InputError(
            f"SEG frames are {seg.Columns}x{seg.Rows}, the image slices {size[0]}x{size[1]}",
            **where, fix="supply the SEG made on this series",
        )
    pixels = seg.pixel_array
    if pixels.ndim == 2:
        pixels = pixels[None]
    if str(seg.SegmentationType) == "FRACTIONAL":
        pixels = pixels >= 0.5 * float(seg.MaximumFractionalValue)
    mask = np.zeros(size[::-1], dtype=np.uint8)
    for i in range(int(seg.get("NumberOfFrames", len(pixels)))):
        number, position, orientation, pixel_spacing = _frame_geometry(seg, i)
        if number != segment:
            continue
        if (np.abs(orientation[:3] - direction[:, 0]).max() > 1e-3
                or np.abs(orientation[3:] - direction[:, 1]).max() > 1e-3
                or np.abs(pixel_spacing[::-1] - spacing[:2]).max() > 1e-3):
            raise InputError("SEG frame orientation or pixel spacing differs from the image",
                             **where, fix="supply the SEG made on this series")
        idx = np.array(image.TransformPhysicalPointToContinuousIndex([float(v) for v in position]))
        k = int(round(idx[2]))
        if np.abs(idx[:2]).max() > 0.05 or abs(idx[2] - k) > slice_tolerance or not 0 <= k < size[2]:
            raise InputError(
                f"SEG frame {i + 1} at {tuple(np.round(position, 2))} mm lies on no slice of the image",
                **where, fix="supply the SEG made on this series",
            )
        mask[k] |= (pixels[i] > 0).astype(np.uint8)
    out = sitk.GetImageFromArray(mask)
    out.CopyInformation(image)
    return out
