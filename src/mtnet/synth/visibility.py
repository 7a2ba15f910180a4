"""Are the image traits visible? A fixed small set of handcrafted features of the target lesion.

The generative model's ``image`` ceiling assumes a model could read the five true traits off
the CT. This check measures how well simple, documented features computed from the
*delivered* image, tumor mask and liver mask (never from ``truth/``, apart from the traits
the features are compared with) rank the patients by each trait (Spearman ρ). Every feature
is measured on the target lesion, the largest connected component of the tumor mask.

Features (HU of the portal phase; distances in mm, voxel spacing honoured):

=====================  =========================  ==================================================
trait                  feature                    definition
=====================  =========================  ==================================================
heterogeneity          ``core_sd_hu``             HU SD of the core (≥ 4 mm inside, not the rim)
                       ``core_excess_sd_hu``      √(core variance − parenchyma variance (IQR/1.349)²)
                       ``core_entropy_bits``      Shannon entropy of the core's HU histogram (8-HU bins)
margin irregularity    ``solidity``               volume / volume of its convex hull (both of the
                                                  marching-cubes surface)
                       ``sphericity``             π^⅓ (6V)^⅔ / area of that surface
anti-corona            ``ring_minus_liver_hu``    median HU of the 0–5 mm peritumoral liver ring
                                                  minus the parenchyma's (liver 15–30 mm away)
capsule                ``rim_minus_core_hu``      mean HU of the outermost voxel layer (6-connected)
                                                  minus the core's
                       ``rim_minus_ring_hu``      the same rim minus the ring's median
vessel contact         ``vessel_gap_mm``          distance from the tumor to the nearest bright
                                                  vessel voxel (liver > 3 mm from its edge, outside every lesion, HU
                                                  smoothed 1 mm > parenchyma + 35, ≥ 40 mm³
                                                  connected)
=====================  =========================  ==================================================

:func:`lesion_features` computes them for one patient, :func:`center_features` for a written
centre (``data/`` as delivered), :func:`visibility` ranks them against the traits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.stats import spearmanr

from mtnet.errors import InputError

FEATURES = {
    "heterogeneity": ("core_sd_hu", "core_excess_sd_hu", "core_entropy_bits"),
    "margin_irregularity": ("solidity", "sphericity"),
    "anti_corona": ("ring_minus_liver_hu",),
    "capsule": ("rim_minus_core_hu", "rim_minus_ring_hu"),
    "vessel_contact": ("vessel_gap_mm",),
}
CORE_MM = 4.0
RING_MM = 5.0
PARENCHYMA_MM = (15.0, 30.0)
VESSEL_HU = 35.0
VESSEL_MIN_MM3 = 40.0
EDGE_MM = 3.0


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    return lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:]))


def _crop(mask: np.ndarray, margin_vox) -> tuple[slice, ...]:
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(0) - margin_vox, 0)
    hi = np.minimum(idx.max(0) + margin_vox + 1, mask.shape)
    return tuple(slice(a, b) for a, b in zip(lo, hi))


def _surface(mask: np.ndarray, sp_zyx) -> tuple[float, float, float]:
    """Area (mm²), enclosed volume (mm³) and convex-hull volume (mm³) of the marching-cubes
    surface of a mask: smoother than the voxels' staircase, so a convex lesion is ~1 solid."""
    from scipy.spatial import ConvexHull
    from skimage.measure import marching_cubes, mesh_surface_area

    verts, faces, _, _ = marching_cubes(np.pad(mask, 1).astype(np.float32), 0.5, spacing=tuple(sp_zyx))
    a, b, c = (verts[faces[:, k]] for k in range(3))
    volume = abs(float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum())) / 6.0
    return float(mesh_surface_area(verts, faces)), volume, float(ConvexHull(verts).volume)


def lesion_features(image: np.ndarray, tumor: np.ndarray, liver: np.ndarray, spacing_xyz) -> dict[str, float]:
    """The handcrafted features of the target lesion (arrays (z, y, x); spacing (x, y, z) mm)."""
    sp = np.asarray(spacing_xyz, float)[::-1]
    tumor_any, liver = tumor > 0, liver > 0
    if not tumor_any.any():
        raise InputError("empty tumor mask: no lesion to measure", fix="deliver a tumor mask with the target lesion")
    target = _largest(tumor_any)
    sl = _crop(target, np.ceil(PARENCHYMA_MM[1] / sp).astype(int) + 1)
    hu = image[sl].astype(np.float32)
    target, tumor_any, liver = target[sl], tumor_any[sl], liver[sl]

    d_in = ndimage.distance_transform_edt(target, sampling=sp)
    d_out = ndimage.distance_transform_edt(~target, sampling=sp)
    outside = liver & ~tumor_any
    band = outside & (d_out >= PARENCHYMA_MM[0]) & (d_out <= PARENCHYMA_MM[1])
    reference = hu[band] if band.any() else hu[outside]
    parenchyma = float(np.median(reference))
    # robust (IQR) variance: vessels in the parenchyma are outliers
    parenchyma_var = float((np.subtract(*np.percentile(reference, [75, 25])) / 1.349) ** 2)
    ring = outside & (d_out <= RING_MM)
    ring_hu = float(np.median(hu[ring])) if ring.any() else parenchyma
    rim = target & ~ndimage.binary_erosion(target, border_value=0)
    core = target & ~rim & (d_in >= CORE_MM)
    if core.sum() < 8:  # small lesions: the inner half
        core = target & ~rim & (d_in >= 0.5 * d_in.max())
    if not core.any():
        core = target
    core_hu = hu[core]
    counts = np.bincount(((core_hu - core_hu.min()) // 8).astype(int))
    prob = counts[counts > 0] / counts.sum()

    area, mesh_volume, hull_volume = _surface(target, sp)
    smooth = ndimage.gaussian_filter(hu, 1.0 / sp)
    # away from the liver's edge, where neighbouring organs (kidney, aorta, heart) bleed in
    deep = ndimage.distance_transform_edt(liver, sampling=sp) > EDGE_MM
    bright = outside & deep & (smooth > parenchyma + VESSEL_HU)
    lab, n = ndimage.label(bright)
    gap = np.inf
    if n:
        big = np.flatnonzero(np.bincount(lab.ravel())[1:] * np.prod(sp) >= VESSEL_MIN_MM3) + 1
        vessel = np.isin(lab, big)
        if vessel.any():
            gap = float(d_out[vessel].min())
    return {
        "core_sd_hu": float(core_hu.std()),
        # the scanner's noise (the parenchyma's SD) taken out: what the tumor adds
        "core_excess_sd_hu": float(np.sqrt(max(core_hu.var() - parenchyma_var, 0.0))),
        "core_entropy_bits": float(-(prob * np.log2(prob)).sum()),
        "solidity": mesh_volume / hull_volume,
        "sphericity": float(np.pi ** (1 / 3) * (6 * mesh_volume) ** (2 / 3) / area),
        "ring_minus_liver_hu": ring_hu - parenchyma,
        "rim_minus_core_hu": float(hu[rim].mean() - core_hu.mean()),
        "rim_minus_ring_hu": float(hu[rim].mean() - ring_hu),
        # no bright vessel within the crop: as far as the crop reaches
        "vessel_gap_mm": gap if np.isfinite(gap) else PARENCHYMA_MM[1],
    }


def _read_nifti(path: Path) -> tuple[np.ndarray, tuple]:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(img), img.GetSpacing()


def _read_portal_series(folder: Path, pattern: str) -> tuple[np.ndarray, tuple]:
    import re

    import pydicom
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    for uid in reader.GetGDCMSeriesIDs(str(folder)):
        files = reader.GetGDCMSeriesFileNames(str(folder), uid)
        if re.search(pattern, str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesDescription)):
            reader.SetFileNames(files)
            img = reader.Execute()
            return sitk.GetArrayFromImage(img), img.GetSpacing()
    raise InputError(f"no series matching {pattern!r}", path=folder, fix="deliver the portal-phase series")


def center_features(data_dir, liver_dir=None) -> pd.DataFrame:
    """:func:`lesion_features` of every patient of a centre as delivered (``data/center.yaml``).

    Liver masks come from ``data/liver_masks`` (training centres) or ``liver_dir``.
    """
    import yaml

    from mtnet.synth.writers import read_dicom_seg_mask

    data_dir = Path(data_dir)
    entry = yaml.safe_load((data_dir / "center.yaml").read_text())
    livers = Path(liver_dir) if liver_dir else data_dir / entry.get("liver_masks", "liver_masks")
    if not livers.is_dir():
        raise InputError("no liver masks", path=livers, fix="pass liver_dir (e.g. the centre's truth/liver_masks)")
    rows = []
    for liver_path in sorted(livers.glob("*.nii.gz")):
        pid = liver_path.name.removesuffix(".nii.gz")
        liver, _ = _read_nifti(liver_path)
        if entry["image_format"] == "dicom":
            folder = data_dir / entry["images"] / pid
            image, spacing = _read_portal_series(folder, entry.get("phase", {}).get("series_description", "."))
        else:
            image, spacing = _read_nifti(data_dir / entry["images"] / f"{pid}.nii.gz")
        if entry["tumor_mask_format"] == "dicom-seg":
            tumor = read_dicom_seg_mask(data_dir / entry["tumor_masks"] / f"{pid}.dcm", data_dir / entry["images"] / pid)
        else:
            tumor, _ = _read_nifti(data_dir / entry["tumor_masks"] / f"{pid}.nii.gz")
        rows.append({"patient_id": pid, **lesion_features(image, tumor, liver, spacing)})
    return pd.DataFrame(rows)


def visibility(features: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Spearman ρ of every feature with its trait (``truth``: patient_id and ``trait_*``).

    One row per (trait, feature), with ``best`` marking the feature of largest |ρ|.
    """
    df = features.merge(truth, on="patient_id", validate="one_to_one")
    rows = []
    for trait, names in FEATURES.items():
        rhos = [float(spearmanr(df[name], df[f"trait_{trait}"]).statistic) for name in names]
        best = int(np.argmax(np.abs(rhos)))
        rows += [{"trait": trait, "feature": name, "rho": rho, "best": i == best, "n": len(df)}
                 for i, (name, rho) in enumerate(zip(names, rhos))]
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    """``python -m mtnet.synth.visibility OUT [OUT ...]``: the visibility table of written
    centres (each OUT holds data/ and truth/, as ``mtnet synth --out OUT`` writes), pooled;
    liver masks from truth/ (a training centre delivers the same ones in data/)."""
    import sys

    dirs = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    features = pd.concat([center_features(d / "data", d / "truth" / "liver_masks") for d in dirs])
    truth = pd.concat([pd.read_csv(d / "truth" / "patients.tsv", sep="\t") for d in dirs])
    print(visibility(features, truth).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
