"""Small DICOM / NIfTI / clinical fixtures for the ingestion tests, written with pydicom.

A patient's CT is a body ellipse (soft tissue 40 HU) with a 'tumor' sphere (90 HU) in air,
and a circular field of view whose outside is stored as the padding value -2000 (HU -3024).
Every file carries identifying headers (PatientName etc.) from :data:`PHI` so the privacy
test can look for them in the outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import yaml
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

PHI = {
    "PatientName": "Doe^Jane^Fixture",
    "PatientID": "MRN-77341",
    "PatientBirthDate": "19510417",
    "StudyDate": "20190305",
}
TRANSFER = {"explicit": ExplicitVRLittleEndian, "jpeg2000": JPEG2000Lossless,
            "jpegls": JPEGLSLossless, "rle": RLELossless}
PADDING = -2000
INTERCEPT = -1024


def phantom(shape_zyx=(10, 32, 32), spacing_xyz=(1.0, 1.0, 2.5), seed=0):
    """(hu int16 (z, y, x), tumor uint8, fov bool (y, x))."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape_zyx, dtype=float)
    cz, cy, cx = [(n - 1) / 2 for n in shape_zyx]
    body = ((y - cy) / (0.42 * shape_zyx[1])) ** 2 + ((x - cx) / (0.45 * shape_zyx[2])) ** 2 <= 1
    hu = np.where(body, 40, -1000).astype(float) + rng.normal(0, 5, shape_zyx)
    r = (((z - cz) * spacing_xyz[2]) ** 2 + ((y - cy) * spacing_xyz[1]) ** 2
         + ((x - cx - 3) * spacing_xyz[0]) ** 2) ** 0.5
    tumor = (r <= 5.0).astype(np.uint8)
    hu[tumor > 0] = 90 + rng.normal(0, 5, int(tumor.sum()))
    yy, xx = np.indices(shape_zyx[1:], dtype=float)
    fov = (yy - cy) ** 2 + (xx - cx) ** 2 <= (0.49 * shape_zyx[1]) ** 2
    return np.rint(hu).astype(np.int16), tumor, fov


def slice_dataset(hu2d, fov, *, position, orientation=(1, 0, 0, 0, 1, 0), spacing_xy=(1.0, 1.0),
                  series_uid, study_uid, series_number=3, description="ABD PORTAL VENOUS",
                  instance=1, slope=1.0, intercept=INTERCEPT, transfer="explicit", tilt=0.0,
                  image_type=("ORIGINAL", "PRIMARY", "AXIAL"), phi=PHI, frame_uid=None):
    """One CT slice: stored = (HU - intercept) / slope, padding -2000 outside ``fov``."""
    stored = np.rint((hu2d.astype(float) - intercept) / slope).astype(np.int16)
    stored[~fov] = PADDING
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for key, value in phi.items():
        setattr(ds, key, value)
    ds.PatientSex = "F"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC1"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.Modality = "CT"
    ds.Manufacturer = "Fixture"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid or study_uid
    ds.PositionReferenceIndicator = ""
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    ds.ImageType = list(image_type)
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(spacing_xy[1]), float(spacing_xy[0])]
    ds.SliceThickness = 2.5
    ds.KVP = 120
    ds.ConvolutionKernel = "B30f"
    ds.GantryDetectorTilt = tilt
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelPaddingValue = PADDING
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.RescaleType = "HU"
    ds.PixelData = stored.tobytes()
    if transfer != "explicit":
        ds.compress(TRANSFER[transfer], stored)
    return ds


def write_series(folder: Path, hu, fov, *, spacing_xyz=(1.0, 1.0, 2.5), origin=(-16.0, -16.0, -100.0),
                 series_number=3, description="ABD PORTAL VENOUS", transfer="explicit",
                 slope=1.0, intercept=INTERCEPT, study_uid=None, names=None, **kw) -> list[Dataset]:
    """A series of axial slices written under random-looking file names; returns the datasets."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    out = []
    rng = np.random.default_rng(series_number)
    for k in range(hu.shape[0]):
        pos = (origin[0], origin[1], origin[2] + k * spacing_xyz[2])
        ds = slice_dataset(hu[k], fov, position=pos, spacing_xy=spacing_xyz[:2], series_uid=series_uid,
                           study_uid=study_uid, series_number=series_number, description=description,
                           instance=k + 1, slope=slope, intercept=intercept, transfer=transfer, **kw)
        name = names[k] if names else f"IM{rng.integers(1e8):08d}"
        ds.save_as(folder / name, enforce_file_format=True)
        out.append(ds)
    return out


def source_image(shape_zyx, spacing_xyz, origin) -> sitk.Image:
    img = sitk.Image([int(v) for v in shape_zyx[::-1]], sitk.sitkUInt8)
    img.SetSpacing([float(v) for v in spacing_xyz])
    img.SetOrigin([float(v) for v in origin])
    return img


def write_nifti(array, path: Path, spacing_xyz, origin) -> None:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing([float(v) for v in spacing_xyz])
    img.SetOrigin([float(v) for v in origin])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), True)


def write_seg(path: Path, source: list[Dataset], tumor, segments=("tumor",), extra_masks=()) -> None:
    """A binary DICOM-SEG (highdicom) of ``tumor`` (z, y, x) on ``source``; segment 1 = tumor."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    descs = []
    masks = [tumor] + list(extra_masks)
    for i, label in enumerate(segments[: len(masks)], start=1):
        descs.append(hd.seg.SegmentDescription(
            segment_number=i, segment_label=label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        ))
    stack = np.stack(masks, axis=-1).astype(bool) if len(masks) > 1 else masks[0].astype(bool)
    seg = hd.seg.Segmentation(
        source_images=source, pixel_array=stack,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descs,
        series_instance_uid=generate_uid(), series_number=99, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer="Fixture", manufacturer_model_name="fixture",
        software_versions="0", device_serial_number="0", omit_empty_frames=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)


def write_sr(path: Path, study_uid: str) -> None:
    """A minimal Basic Text SR (a non-image object mixed into a patient folder)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for key, value in PHI.items():
        setattr(ds, key, value)
    ds.Modality = "SR"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 900
    ds.save_as(path, enforce_file_format=True)


CLINICAL_ROW = {
    "age": 61, "sex": "M", "treatment": "TACE", "hbv": 1, "cirrhosis": 1, "child_pugh": "A",
    "bclc": "B", "max_diameter_mm": 62.0, "lesion_number": 2, "afp_ng_ml": 120.5,
    "location": "right", "fusion_lesions": 0, "invasive_shape": 1, "capsule": 1,
    "capsule_breakthrough": 0, "corona_enhancement": 0, "corona_low_attenuation": 1,
    "mosaic_architecture": 0, "nodule_in_nodule": 0, "enhancement_ratio": 1.2, "mvi": 1,
    "time_to_mvi_days": 300, "death": 0, "os_days": 900,
}


def make_center(root: Path, center: str, n: int = 2, *, image_format="dicom", mask_format="nifti",
                transfer="explicit", shape_zyx=(10, 32, 32), spacing_xyz=(1.0, 1.0, 2.5),
                extra_series=False, clinical_rows=None, liver=False, seed=0) -> Path:
    """A data folder described by center.yaml, like results/synth/{center}/data (``seed``
    varies the phantoms' noise between centers)."""
    data = root / center / "data"
    pids = [f"{center}-{i:04d}" for i in range(1, n + 1)]
    origin = (-16.0, -16.0, -100.0)
    for i, pid in enumerate(pids):
        hu, tumor, fov = phantom(shape_zyx, spacing_xyz, seed=i + 1000 * seed)
        if image_format == "dicom":
            folder = data / "images" / pid
            study = generate_uid()
            src = write_series(folder, hu, fov, spacing_xyz=spacing_xyz, origin=origin,
                               transfer=transfer, study_uid=study)
            if extra_series:
                write_series(folder, hu, fov, spacing_xyz=spacing_xyz, origin=origin,
                             series_number=2, description="ABD ARTERIAL", study_uid=study)
                write_sr(folder / "SR0001", study)
            if mask_format == "dicom-seg":
                write_seg(data / "tumor_masks" / f"{pid}.dcm", src, tumor)
        else:
            hu = hu.copy()
            hu[:, ~fov] = -3024
            write_nifti(hu, data / "images" / f"{pid}.nii.gz", spacing_xyz, origin)
        if mask_format == "nifti":
            write_nifti(tumor, data / "tumor_masks" / f"{pid}.nii.gz", spacing_xyz, origin)
        if liver:
            write_nifti((hu > 0).astype(np.uint8), data / "liver_masks" / f"{pid}.nii.gz", spacing_xyz, origin)
    rows = clinical_rows or [dict(CLINICAL_ROW, patient_id=pid) for pid in pids]
    import pandas as pd

    pd.DataFrame(rows).to_csv(data / "clinical.csv", index=False)
    entry = {"source": "files", "images": "images", "image_format": image_format,
             "tumor_masks": "tumor_masks", "tumor_mask_format": mask_format,
             "clinical": "clinical.csv"}
    if liver:
        entry["liver_masks"] = "liver_masks"
    (data / "center.yaml").write_text(yaml.safe_dump(entry))
    return data


def outputs_for(root: Path, center: str) -> dict:
    base = root / "results" / "ingest" / center
    return {"images": str(base / "images"), "tumor": str(base / "tumor"), "liver": str(base / "liver"),
            "clinical": str(base / "clinical.tsv"), "qc": str(base / "qc.tsv"),
            "montage": str(base / "qc_montage.png")}


def settings(spacing=(2.0, 2.0, 2.5), **ingest) -> dict:
    return {"center": {"role": "train", "source": "synthetic", "synthetic": {"preset": "tiny"}},
            "ingest": {"spacing_mm": list(spacing), **ingest}}


