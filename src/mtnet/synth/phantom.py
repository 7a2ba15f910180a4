"""Portal-phase-like abdominal CT phantoms, vectorised NumPy/SciPy.

A patient is a label volume (body, fat, muscle, spine, lungs, heart, aorta/IVC, liver with
portal and hepatic vessels, spleen, kidneys, stomach, tumor, capsule, anti-corona ring) plus
texture fields, mapped to HU by a phase's attenuation table, blurred and made noisy by the
centre's scanner. Coordinates are mm in LPS (x → patient Left, y → Posterior, z → Superior)
around the body centre; arrays are (z, y, x).

Image traits (standard normal, from the generative model) map to visible features through
s(t) = expit(1.2 t) ∈ (0, 1):

- heterogeneity → amplitude of a mosaic of compartments inside the tumor (10 + 40 s HU), and
  the washout (tumor = liver × the enhancement ratio's mean + slope · t);
- margin irregularity → lobulated carving of the tumor surface (depth 45 s % of the radius,
  zero at the long-axis tips so the longest axial diameter stays the table's);
- anti-corona → a 5 mm peritumoral ring, 40 s HU below the parenchyma;
- capsule → an enhancing rim (the drawn surface's outermost voxel layer), liver + 50 s HU;
- vessel contact → a 4 mm portal branch whose wall passes 12 − 16 s mm from the drawn
  surface (≤ 0: abutting), on the side with more liver; every other vessel keeps 16 mm
  away from every lesion.

The target lesion is an ellipsoid whose longest in-plane semi-axis is max_diameter_mm / 2;
other lesions are smaller (20–60% of it), apart from it. The liver contains every lesion
(it is enlarged around a lesion that would bulge out: huge HCCs deform the liver).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_erosion, gaussian_filter
from scipy.special import expit

from mtnet.synth.model import ENHANCEMENT_RATIO

LABELS = {
    "air": 0, "fat": 1, "muscle": 2, "bone": 3, "lung": 4, "heart": 5, "aorta": 6, "ivc": 7,
    "liver": 8, "portal": 9, "hepatic": 10, "spleen": 11, "kidney": 12, "stomach_wall": 13,
    "stomach_content": 14, "tumor": 15, "capsule": 16, "ring": 17,
}
# attenuation (HU) per label in the portal venous and the arterial phase
PORTAL_HU = {
    "air": -1000, "fat": -100, "muscle": 55, "bone": 450, "lung": -850, "heart": 140,
    "aorta": 165, "ivc": 140, "liver": 105, "portal": 175, "hepatic": 165, "spleen": 118,
    "kidney": 165, "stomach_wall": 85, "stomach_content": 15, "tumor": 75, "capsule": 105,
    "ring": 105,
}
ARTERIAL_HU = dict(
    PORTAL_HU, heart=260, aorta=320, ivc=90, liver=70, portal=120, hepatic=75, spleen=135,
    kidney=230, tumor=125, capsule=70, ring=70,
)

# margin carving depth (fraction of the radius at s = 1); clearance of other vessels around
# every lesion (beyond the largest vessel-contact gap, 12 mm); the contact vessel's radius
MARGIN_DEPTH = 0.45
CLEAR_MM = 16.0
VESSEL_RADIUS_MM = 4.0


@dataclass
class Phantom:
    image: np.ndarray          # int16 (z, y, x), HU, portal phase
    liver: np.ndarray          # uint8 (z, y, x), liver incl. tumors
    tumor: np.ndarray          # uint8 (z, y, x), every lesion = 1
    spacing: tuple             # (x, y, z) mm
    origin: tuple              # (x, y, z) mm of voxel (0, 0, 0)
    arterial: np.ndarray | None
    target_axes_mm: tuple      # semi-axes (a, b, c) of the target lesion
    n_lesions: int
    labels: np.ndarray | None = None  # uint8 (z, y, x), :data:`LABELS`


def _s(t: float) -> float:
    return float(expit(1.2 * t))


def _rot(theta: float, tilt_x: float = 0.0, tilt_y: float = 0.0) -> np.ndarray:
    """Rotation matrix Rz(θ)·Rx·Ry; rows give the local axes in patient coordinates."""
    c, s = np.cos(theta), np.sin(theta)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    cx, sx = np.cos(tilt_x), np.sin(tilt_x)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    cy, sy = np.cos(tilt_y), np.sin(tilt_y)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return (rz @ rx @ ry).T


class Grid:
    """Voxel-centre coordinates (mm) per axis and bounding-box helpers."""

    def __init__(self, shape_zyx, spacing_xyz, origin_xyz):
        self.shape = shape_zyx
        self.x = (origin_xyz[0] + spacing_xyz[0] * np.arange(shape_zyx[2])).astype(np.float32)
        self.y = (origin_xyz[1] + spacing_xyz[1] * np.arange(shape_zyx[1])).astype(np.float32)
        self.z = (origin_xyz[2] + spacing_xyz[2] * np.arange(shape_zyx[0])).astype(np.float32)

    def box(self, center, half):
        """Slices (z, y, x) covering center ± half (mm), clipped; None when outside."""
        sl = []
        for axis, c, h in ((self.z, center[2], half[2]), (self.y, center[1], half[1]), (self.x, center[0], half[0])):
            lo, hi = np.searchsorted(axis, c - h), np.searchsorted(axis, c + h, side="right")
            if hi <= lo:
                return None
            sl.append(slice(lo, hi))
        return tuple(sl)

    def local(self, sl, center, R):
        """Local coordinates (u, v, w) of the box's voxels in the frame of rotation R."""
        dz = (self.z[sl[0]] - np.float32(center[2]))[:, None, None]
        dy = (self.y[sl[1]] - np.float32(center[1]))[None, :, None]
        dx = (self.x[sl[2]] - np.float32(center[0]))[None, None, :]
        R = R.astype(np.float32)
        return [R[i, 0] * dx + R[i, 1] * dy + R[i, 2] * dz for i in range(3)]


def _waves(u, v, w, rng, amp, n=4, wavelength=(40.0, 120.0)):
    """Low-frequency deformation: a sum of n random plane waves of amplitude ``amp`` (mm)."""
    out = 0.0
    for _ in range(n):
        k = rng.normal(size=3)
        k = (k * 2 * np.pi / rng.uniform(*wavelength) / np.linalg.norm(k)).astype(np.float32)
        phase = np.float32(rng.uniform(0, 2 * np.pi))
        out = out + np.float32(amp / np.sqrt(n)) * np.sin(k[0] * u + k[1] * v + k[2] * w + phase)
    return out


def paint_ellipsoid(lab, grid, label, center, axes, R=None, rng=None, deform_mm=0.0, where=None):
    """Set ``label`` inside a (deformed) ellipsoid; returns (slices, inside-mask) of its box."""
    R = np.eye(3) if R is None else R
    half = np.full(3, max(axes) + abs(deform_mm) * 1.5)
    sl = grid.box(center, half)
    if sl is None:
        return None, None
    u, v, w = grid.local(sl, center, R)
    q = np.sqrt((u / axes[0]) ** 2 + (v / axes[1]) ** 2 + (w / axes[2]) ** 2)
    if deform_mm:
        q = q - _waves(u, v, w, rng, deform_mm) / np.mean(axes)
    inside = q <= 1.0
    if where is not None:
        inside &= np.isin(lab[sl], where)
    lab[sl][inside] = label
    return sl, inside


def paint_cylinder(lab, grid, label, center_xy, axes_xy, where=None):
    """Set ``label`` in a vertical elliptic cylinder through the whole volume (2D mask)."""
    m2 = ((grid.x[None, :] - center_xy[0]) / axes_xy[0]) ** 2 + ((grid.y[:, None] - center_xy[1]) / axes_xy[1]) ** 2 <= 1
    if where is None:
        lab[:, m2] = label
    else:
        sub = lab[:, m2]
        sub[np.isin(sub, where)] = label
        lab[:, m2] = sub


def _spine(lab, grid, spine_y):
    paint_cylinder(lab, grid, LABELS["bone"], (0, spine_y), (17, 16))
    paint_cylinder(lab, grid, LABELS["bone"], (0, spine_y + 22), (6, 12))


def paint_tube(lab, grid, label, p0, p1, radius, where=None):
    """Set ``label`` within ``radius`` (mm) of the segment p0–p1."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    lo, hi = np.minimum(p0, p1) - radius, np.maximum(p0, p1) + radius
    sl = grid.box((lo + hi) / 2, (hi - lo) / 2)
    if sl is None:
        return
    d = p1 - p0
    L2 = float(d @ d) or 1e-9
    pz = grid.z[sl[0]][:, None, None] - p0[2]
    py = grid.y[sl[1]][None, :, None] - p0[1]
    px = grid.x[sl[2]][None, None, :] - p0[0]
    t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / L2, 0, 1)
    dist2 = (px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2
    inside = dist2 <= radius**2
    if where is not None:
        inside &= np.isin(lab[sl], where)
    lab[sl][inside] = label


def _lesion_frame(rng, big):
    theta = rng.uniform(-0.35, 0.35) if big else rng.uniform(0, np.pi)
    return _rot(theta, rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15))


def render(row: dict, scanner, fov_mm, rng: np.random.Generator, arterial: bool = False) -> Phantom:
    """One patient's phantom from its table row (clinical factors and ``trait_*`` values)."""
    sp = (scanner.spacing_xy, scanner.spacing_xy, scanner.thickness)
    shape = tuple(int(round(f / s)) for f, s in zip(fov_mm[::-1], sp[::-1]))
    origin = tuple(-(n - 1) * s / 2 for n, s in zip(shape[::-1], sp))
    grid = Grid(shape, sp, origin)
    lab = np.zeros(shape, np.uint8)

    D = float(row["max_diameter_mm"])
    a_t = D / 2
    # body: elliptic cylinder, subcutaneous fat, muscle wall; wide enough for the tumor
    fov_x, fov_y = fov_mm[0] / 2 - 6, fov_mm[1] / 2 - 6
    ax = min(fov_x, max(rng.uniform(128, 150), a_t + 50))
    ay = min(fov_y, rng.uniform(96, 112))
    fat_t, mus_t = rng.uniform(12, 26), rng.uniform(8, 12)
    X, Y = grid.x[None, None, :], grid.y[None, :, None]
    r_body = (X / ax) ** 2 + (Y / ay) ** 2
    body = np.broadcast_to(r_body <= 1, shape)
    lab[body] = LABELS["fat"]
    cav_x, cav_y = ax - fat_t - mus_t, ay - fat_t - mus_t
    lab[np.broadcast_to(((X / (ax - fat_t)) ** 2 + (Y / (ay - fat_t)) ** 2 <= 1), shape)] = LABELS["muscle"]
    cavity = np.broadcast_to((X / cav_x) ** 2 + (Y / cav_y) ** 2 <= 1, shape)
    lab[cavity] = LABELS["fat"]

    z_top = grid.z[-1]
    dome = z_top - rng.uniform(25, 40)  # diaphragm level
    Z = grid.z[:, None, None]
    lab[cavity & np.broadcast_to(Z > dome + 8 * np.cos(X / 60.0), shape)] = LABELS["lung"]
    # spine and paraspinal muscles
    spine_y = cav_y - 18
    for side in (-1, 1):
        paint_cylinder(lab, grid, LABELS["muscle"], (side * 32, cav_y + 2), (22, 18))
    _spine(lab, grid, spine_y)
    # heart above the diaphragm, great vessels
    paint_ellipsoid(lab, grid, LABELS["heart"], (15, -25, dome + 45), (60, 45, 50), _rot(0.4), rng, 4)
    aorta = (18, spine_y - 30)
    paint_tube(lab, grid, LABELS["aorta"], (*aorta, grid.z[0] - 5), (*aorta, z_top + 5), rng.uniform(9, 12))
    ivc = (-22, spine_y - 32)
    paint_tube(lab, grid, LABELS["ivc"], (*ivc, grid.z[0] - 5), (*ivc, dome + 20), rng.uniform(9, 12))
    # kidneys, spleen, stomach
    kz = rng.uniform(-55, -35)
    for side in (-1, 1):
        paint_ellipsoid(
            lab, grid, LABELS["kidney"], (side * rng.uniform(55, 70), spine_y - 10, kz + side * 8),
            (26, 30, 50), _rot(side * 0.4, 0, side * 0.2), rng, 3,
        )
    paint_ellipsoid(
        lab, grid, LABELS["spleen"], (cav_x - 35, cav_y - 55, dome - 45),
        (rng.uniform(22, 32), rng.uniform(45, 60), rng.uniform(45, 60)), _rot(-0.6), rng, 5,
    )
    st_c = (rng.uniform(35, 55), -cav_y + 45, dome - 35)
    st_ax = (rng.uniform(35, 50), rng.uniform(25, 35), rng.uniform(35, 50))
    paint_ellipsoid(lab, grid, LABELS["stomach_wall"], st_c, st_ax, _rot(0.5), rng, 4)
    paint_ellipsoid(
        lab, grid, LABELS["stomach_content"], st_c, tuple(s - 5 for s in st_ax), _rot(0.5), rng, 0,
        where=[LABELS["stomach_wall"]],
    )

    # liver: right lobe + left lobe, deformed; cirrhosis gives a nodular surface
    scale = rng.uniform(0.95, 1.15) * (0.93 if row["cirrhosis"] else 1.0)
    right_c = np.array([-cav_x + 66 * scale, rng.uniform(-12, 0), dome - 55 * scale])
    right_ax = np.array([64, 66, 58]) * scale * rng.uniform(0.93, 1.07, 3)
    left_c = right_c + np.array([72, -26, 14]) * scale
    left_ax = np.array([50, 28, 36]) * scale * rng.uniform(0.9, 1.1, 3)
    nod = 2.5 if row["cirrhosis"] else 0.0
    liver = np.zeros(shape, bool)
    for c, axs, th in ((right_c, right_ax, rng.uniform(-0.3, 0.3)), (left_c, left_ax, rng.uniform(-0.5, 0.1))):
        sl, inside = paint_ellipsoid(lab, grid, LABELS["liver"], c, axs, _rot(th), rng, 8)
        liver[sl] |= inside
    if nod:
        # high-frequency surface nodularity: erode the outermost shell where a wave is low
        sl = grid.box(right_c + np.array([30, 0, 0]), right_ax + 60)
        u, v, w = grid.local(sl, right_c, np.eye(3))
        bumps = _waves(u, v, w, rng, nod, n=6, wavelength=(12, 25)) < -nod * 0.6
        shell = liver[sl] & bumps & ~_erode_cheap(liver[sl])
        liver[sl] &= ~shell
        lab[sl][shell] = LABELS["fat"]

    # lesions: target + satellites, kept inside the cavity and apart from each other
    n_les = int(row["lesion_number"])
    big = a_t > 45
    lobe_c, lobe_ax = (left_c, left_ax) if row["location"] == "left" and a_t < 35 else (right_c, right_ax)
    lesions = []
    b_t = a_t * rng.uniform(0.75, 0.95)
    b_t = min(b_t, cav_y - 12)
    c_t = min(a_t * rng.uniform(0.7, 1.0), 0.45 * fov_mm[2] - 10)
    c0 = lobe_c + rng.uniform(-0.3, 0.3, 3) * lobe_ax
    c0[0] = np.clip(c0[0], -cav_x + a_t + 8, cav_x - a_t - 8) if a_t + 8 < cav_x else 0.0
    c0[1] = np.clip(c0[1], -cav_y + b_t + 6, cav_y - b_t - 6) if b_t + 6 < cav_y else 0.0
    c0[2] = np.clip(c0[2], grid.z[0] + c_t + 4, grid.z[-1] - c_t - 4)
    lesions.append((c0, np.array([a_t, b_t, c_t]), _lesion_frame(rng, big)))
    min_r = 1.6 * sp[0]
    for _ in range(n_les - 1):
        r = max(min_r, a_t * rng.uniform(0.2, 0.5))
        for _try in range(120):
            if _try and _try % 30 == 0:
                r = max(min_r, 0.7 * r)
            cand = (right_c if rng.uniform() < 0.75 else left_c) + rng.uniform(-0.55, 0.55, 3) * right_ax
            if all(np.linalg.norm(cand - c) > ax_[0] + r + 2 * sp[0] + 3 for c, ax_, _ in lesions):
                lesions.append((cand, np.array([r, r * 0.9, r * 0.85]), _rot(rng.uniform(0, np.pi))))
                break
    # the liver holds every lesion (enlarged around bulging ones)
    for c, axs, R in lesions:
        sl, inside = paint_ellipsoid(lab, grid, LABELS["liver"], c, axs + 8, R, rng, 3)
        liver[sl] |= inside

    # the spine and the aorta stay where they are, whatever the liver's shape
    _spine(lab, grid, spine_y)
    paint_tube(lab, grid, LABELS["aorta"], (*aorta, grid.z[0] - 5), (*aorta, z_top + 5), 10.0)
    liver &= np.isin(lab, [LABELS["liver"]])

    # vessels inside the liver: portal (from the hilum) and hepatic (to the IVC)
    hilum = right_c + np.array([45, -10, -20]) * scale
    liver_only = [LABELS["liver"]]
    paint_tube(lab, grid, LABELS["portal"], hilum, right_c + np.array([-25, 10, 5]), rng.uniform(5, 7), liver_only)
    paint_tube(lab, grid, LABELS["portal"], hilum, left_c + np.array([10, 0, 5]), rng.uniform(4, 5.5), liver_only)
    top = np.array([ivc[0], ivc[1], right_c[2] + 0.6 * right_ax[2]])
    for tip in (right_c + [-50, -20, 20], right_c + [0, -45, 30], left_c + [20, -5, 10]):
        paint_tube(lab, grid, LABELS["hepatic"], top, tip, rng.uniform(3.5, 5.5), liver_only)
    for _ in range(5):
        p0 = hilum + rng.uniform(-10, 10, 3)
        tip = right_c + rng.uniform(-0.7, 0.7, 3) * right_ax
        paint_tube(lab, grid, LABELS["portal"], p0, tip, rng.uniform(2.0, 3.2), liver_only)

    # tumors, capsule, anti-corona ring; texture of the tumors
    texture = np.zeros(shape, np.float32)
    tumor = np.zeros(shape, bool)
    irr = _s(row["trait_margin_irregularity"])
    het = _s(row["trait_heterogeneity"])
    cap = _s(row["trait_capsule"])
    ring = _s(row["trait_anti_corona"])
    for i, (c, axs, R) in enumerate(lesions):
        half = axs.max() + CLEAR_MM + 2
        sl = grid.box(c, np.full(3, half))
        u, v, w = grid.local(sl, c, R)
        q = np.sqrt((u / axs[0]) ** 2 + (v / axs[1]) ** 2 + (w / axs[2]) ** 2) + 1e-6
        cos2 = (u / axs[0]) ** 2 / q**2
        lobes = 0.5 + 0.5 * np.sin(rng.integers(4, 8) * np.arctan2(v / axs[1], u / axs[0]) + rng.uniform(0, 6.3)) * np.cos(
            rng.integers(2, 5) * w / axs[2] / q * np.pi / 2 + rng.uniform(0, 6.3)
        )
        # no carving at the long-axis tips: the longest axial diameter stays the table's
        bound = 1.0 - MARGIN_DEPTH * irr * lobes * (1 - cos2**4)
        rel = q / bound  # ≤ 1 inside the tumor
        r_mean = float(np.mean(axs))
        in_tumor = _largest_component((rel <= 1.0) & liver[sl])
        rim = in_tumor & ~binary_erosion(in_tumor, border_value=0)  # one voxel, the drawn surface's
        # other vessels keep clear of the lesion (contact is the vessel-contact trait's alone)
        near = (rel <= 1 + CLEAR_MM / r_mean) & np.isin(lab[sl], [LABELS["portal"], LABELS["hepatic"]]) & liver[sl]
        lab[sl][near] = LABELS["liver"]
        halo = (rel > 1.0) & (rel <= 1 + 5.0 / r_mean) & (lab[sl] == LABELS["liver"])
        lab[sl][halo] = LABELS["ring"]
        lab[sl][in_tumor] = LABELS["tumor"]
        lab[sl][rim] = LABELS["capsule"]
        tumor[sl] |= in_tumor
        if i == 0:
            target = (u[in_tumor], v[in_tumor])
        # mosaic: quantised smooth noise inside the tumor (drawn on its bounding box only)
        inner = in_tumor & ~rim  # the capsule is an even rim
        if inner.any():
            bb = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(inner))
            noise = gaussian_filter(rng.standard_normal(inner[bb].shape).astype(np.float32), 3.0 / np.array(sp[::-1]))
            noise /= noise.std() + 1e-6
            mosaic = np.round(np.clip(noise, -1.5, 1.5) * 1.2) / 1.8
            tex = texture[sl][bb]
            tex[inner[bb]] = ((10 + 40 * het) * mosaic)[inner[bb]]
            texture[sl][bb] = tex

    # vessel contact of the target lesion: a portal branch along its w axis whose wall is
    # ``gap`` mm from the drawn (carved) surface, on the side with more liver around it
    c0, axs0, R0 = lesions[0]
    gap = 12.0 - 16.0 * _s(row["trait_vessel_contact"])
    coin = rng.uniform() < 0.5
    offsets = {sign: _line_offset(target[0], sign * target[1], gap + VESSEL_RADIUS_MM, sp[0]) for sign in (1, -1)}
    room = {sign: _liver_along(lab, grid, c0 + sign * d * R0[1], R0[2], axs0[2]) for sign, d in offsets.items()}
    sign = 1 if room[1] > room[-1] or (room[1] == room[-1] and coin) else -1
    p_mid = c0 + sign * offsets[sign] * R0[1]
    p_a, p_b = p_mid - R0[2] * (axs0[2] + 30), p_mid + R0[2] * (axs0[2] + 30)
    paint_tube(lab, grid, LABELS["portal"], p_a, p_b, VESSEL_RADIUS_MM, [LABELS["liver"], LABELS["hepatic"], LABELS["ring"]])

    liver_hu = float(PORTAL_HU["liver"] + rng.normal(0, 6))
    portal = _to_hu(lab, texture, _table(PORTAL_HU, liver_hu, row, cap, ring, portal_phase=True), scanner, sp, rng)
    art = None
    if arterial:
        art = _to_hu(lab, texture, _table(ARTERIAL_HU, liver_hu - 35, row, cap, ring, portal_phase=False), scanner, sp, rng)
    return Phantom(
        portal, liver.astype(np.uint8), tumor.astype(np.uint8), sp, origin, art,
        tuple(lesions[0][1]), len(lesions), lab,
    )


def _line_offset(u: np.ndarray, v: np.ndarray, r: float, spacing: float) -> float:
    """Offset D along v of a line parallel to w (at u = 0) whose distance to the nearest
    point (u, v) is r: D = max over points with |u| ≤ r of v + √(r² − u²)."""
    close = np.abs(u) <= max(r, spacing)
    if not close.any():
        return float(v.max() + r)
    return float(np.max(v[close] + np.sqrt(np.maximum(r**2 - u[close] ** 2, 0.0))))


def _liver_along(lab, grid, p_mid, direction, half_length) -> int:
    """How many points (1 mm apart) of the segment p_mid ± half_length·direction lie in
    liver parenchyma (where a vessel can be drawn)."""
    t = np.arange(-half_length, half_length + 1.0)
    pts = p_mid[None, :] + t[:, None] * direction[None, :]
    origin = np.array([grid.x[0], grid.y[0], grid.z[0]])
    step = np.array([grid.x[1] - grid.x[0], grid.y[1] - grid.y[0], grid.z[1] - grid.z[0]])
    idx = np.round((pts - origin) / step).astype(int)
    ok = np.all((idx >= 0) & (idx < np.array(grid.shape[::-1])), axis=1)
    x, y, z = idx[ok].T
    return int(np.isin(lab[z, y, x], [LABELS["liver"], LABELS["hepatic"], LABELS["ring"]]).sum())


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of a lesion (drops fragments cut by vessels/spine)."""
    from scipy import ndimage

    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())[1:]
    return lab == (1 + int(np.argmax(sizes)))


def _erode_cheap(mask: np.ndarray) -> np.ndarray:
    """One-voxel 6-neighbour erosion by shifts (faster than scipy on a bool box)."""
    out = mask.copy()
    for ax in range(3):
        for shift in (1, -1):
            out &= np.roll(mask, shift, axis=ax)
    return out


def _table(base: dict, liver_hu: float, row, cap: float, ring: float, portal_phase: bool) -> np.ndarray:
    hu = dict(base)
    hu["liver"] = liver_hu
    if portal_phase:
        mean, slope, _ = ENHANCEMENT_RATIO  # the washout the table's enhancement_ratio reads
        hu["tumor"] = liver_hu * (mean + slope * float(row["trait_heterogeneity"]))
        hu["capsule"] = liver_hu + 50 * cap
        hu["ring"] = liver_hu - 40 * ring
    else:
        hu["capsule"] = hu["tumor"]
        hu["ring"] = liver_hu - 10 * ring
    table = np.zeros(max(LABELS.values()) + 1, np.float32)
    for name, value in hu.items():
        table[LABELS[name]] = value
    return table


def _to_hu(lab, texture, table, scanner, sp, rng) -> np.ndarray:
    """HU = table[label] + texture, parenchymal texture, scanner blur, noise and offset."""
    img = table[lab] + texture
    soft = lab >= LABELS["liver"]
    img[soft] += gaussian_filter(rng.standard_normal(lab.shape).astype(np.float32), 2.0 / np.array(sp[::-1]))[soft] * 8.0
    sigma = scanner.blur_mm / np.array(sp[::-1])
    img = gaussian_filter(img, sigma)
    img += rng.standard_normal(lab.shape).astype(np.float32) * scanner.noise_hu + scanner.offset_hu
    return np.clip(np.round(img), -1024, 3071).astype(np.int16)
