"""A small abdominal CT phantom for the liver and tumor tests (not the synthetic cohort).

Ellipsoids in physical mm on an identity-direction grid, arrays (z, y, x) = (S, P, L):
body (fat under a muscle wall), liver (right upper abdomen) with an optional hypodense
tumor, and the distractors the classical backend must leave out: lungs above it, heart,
spleen (left), stomach with air and water (left), kidneys (posterior, lower), spine, aorta.
Seeded: the same seed gives the same phantom.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

FOV_MM = (320.0, 260.0, 240.0)  # x, y, z


def _grid(spacing: float):
    n = [int(round(f / spacing)) for f in FOV_MM]
    x = (np.arange(n[0]) + 0.5) * spacing - FOV_MM[0] / 2
    y = (np.arange(n[1]) + 0.5) * spacing - FOV_MM[1] / 2
    z = (np.arange(n[2]) + 0.5) * spacing - FOV_MM[2] / 2
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    return zz, yy, xx


def ellipsoid(zz, yy, xx, centre_xyz, radii_xyz) -> np.ndarray:
    cx, cy, cz = centre_xyz
    rx, ry, rz = radii_xyz
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 + ((zz - cz) / rz) ** 2 <= 1.0


def abdomen(spacing: float = 3.0, seed: int = 0, tumor_radius_mm: float = 15.0,
            jitter_mm: float = 0.0, noise_hu: float = 12.0, liver_hu: float = 110.0):
    """(CT image int16, liver truth uint8, tumor truth uint8) as SimpleITK images."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = _grid(spacing)

    def j(v):
        return np.asarray(v, float) + rng.uniform(-jitter_mm, jitter_mm, size=len(v))

    hu = np.full(zz.shape, -1000.0)
    body = ((xx / 150.0) ** 2 + (yy / 115.0) ** 2) <= 1.0
    inner = ((xx / 140.0) ** 2 + (yy / 105.0) ** 2) <= 1.0
    cavity = ((xx / 130.0) ** 2 + (yy / 95.0) ** 2) <= 1.0
    hu[body] = -90.0  # subcutaneous fat
    hu[inner] = 45.0  # muscle wall
    hu[cavity] = -80.0  # visceral fat
    liver = ellipsoid(zz, yy, xx, j([-50, -5, 0]), j([80, 70, 65])) & cavity
    spleen = ellipsoid(zz, yy, xx, j([95, 35, 15]), [30, 40, 45])
    stomach = ellipsoid(zz, yy, xx, j([55, -35, 15]), [35, 30, 40])
    kidneys = [ellipsoid(zz, yy, xx, [side * 70, 55, -75], [25, 25, 45]) for side in (-1, 1)]
    lungs = [ellipsoid(zz, yy, xx, [side * 70, 10, 135], [60, 80, 80]) & cavity for side in (-1, 1)]
    heart = ellipsoid(zz, yy, xx, [20, -25, 115], [50, 45, 42])
    spine = ((xx / 18.0) ** 2 + ((yy - 80) / 18.0) ** 2) <= 1.0
    aorta = (((xx - 15) / 11.0) ** 2 + ((yy - 55) / 11.0) ** 2) <= 1.0

    hu[liver] = liver_hu
    hu[spleen] = liver_hu + 10
    hu[stomach] = 60.0
    hu[ellipsoid(zz, yy, xx, j([55, -35, 15]), [30, 25, 35])] = 10.0
    hu[ellipsoid(zz, yy, xx, j([55, -50, 25]), [22, 12, 20])] = -900.0
    for k in kidneys:
        hu[k] = 190.0
    for lung in lungs:
        hu[lung] = -850.0
    hu[heart] = 170.0
    hu[aorta] = 190.0
    hu[spine] = 450.0
    truth = (hu == liver_hu) & liver
    tumor = np.zeros_like(truth)
    if tumor_radius_mm > 0:
        tumor = ellipsoid(zz, yy, xx, [-60, -5, 0], [tumor_radius_mm] * 3) & truth
        hu[tumor] = 55.0
        truth |= tumor
    hu += rng.normal(0.0, noise_hu, size=hu.shape)
    hu[~body] = -1000.0 + rng.normal(0.0, 5.0, size=(~body).sum())

    def image(arr, dtype):
        img = sitk.GetImageFromArray(arr.astype(dtype))
        img.SetSpacing((spacing,) * 3)
        img.SetOrigin(tuple(-f / 2 + spacing / 2 for f in FOV_MM))
        return img

    return image(np.round(hu), np.int16), image(truth, np.uint8), image(tumor, np.uint8)
