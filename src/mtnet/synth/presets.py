"""Presets of the synthetic cohort: centers, sizes, event counts, scanners, file formats.

Per-center sizes of the paper: the text reports only the totals (training YPH+ZPH+SPH+NFH:
281 patients, 35 MVI events; external ZCPH: 85 patients, 10 events; Fu et al. 2021 §3.1);
the per-hospital split is in the flow chart (Fig. 1), which is an image not available here.
We therefore assume a split in which Zhuhai People's Hospital, the leading centre, is the
largest: ZPH 120/15, YPH 60/8, SPH 55/7, NFH 46/5 (sums 281/35). ``demo`` keeps ~40% of
every centre; ``benchmark`` has the training centres at 4× (1,124 patients, 140 events) and
a 2,000-patient external ZCPH (235 events, the paper's external rate 10/85), for AUC gaps
measured precisely. Any centre name not listed takes its role's default (``_ROLE_DEFAULT``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mtnet.errors import InputError

PRESETS = ("tiny", "demo", "paper", "benchmark")


@dataclass(frozen=True)
class Scanner:
    """Acquisition of one centre: spacing (x, y) in mm, slice thickness (= spacing z) in mm,
    Gaussian noise SD (HU), HU offset, blur SD (mm), and the DICOM equipment names."""

    spacing_xy: float
    thickness: float
    noise_hu: float
    offset_hu: float
    blur_mm: float
    manufacturer: str = "SYNTHETIC"
    model: str = "PHANTOM-CT"
    kvp: int = 120
    kernel: str = "B30f"


@dataclass(frozen=True)
class CenterPreset:
    n_patients: int
    n_events: int
    image_format: str = "nifti"
    tumor_mask_format: str = "nifti"
    clinical_format: str = "csv"
    scanner: Scanner = field(default_factory=lambda: Scanner(2.0, 4.0, 12.0, 0.0, 1.0))
    decoy_fraction: float = 0.0  # DICOM only: share of patients with an arterial decoy series
    dicom_compression: str = "none"  # DICOM only: none | jpeg-ls


# field of view (x, y, z) in mm of each preset; tiny is smaller and coarser
FOV_MM = {
    "tiny": (288.0, 228.0, 175.0),
    "demo": (320.0, 250.0, 180.0),
    "paper": (320.0, 250.0, 180.0),
    "benchmark": (320.0, 250.0, 180.0),
}

_SCANNERS = {
    "YPH": Scanner(1.9, 4.0, 14.0, 4.0, 0.9, "SYNTHETIC-GE", "PHANTOM LightSpeed", 120, "STANDARD"),
    "ZPH": Scanner(2.0, 3.0, 10.0, 0.0, 0.8, "SYNTHETIC-SIEMENS", "PHANTOM Definition", 120, "B30f"),
    "SPH": Scanner(2.0, 3.0, 12.0, -6.0, 1.0, "SYNTHETIC-PHILIPS", "PHANTOM Brilliance", 120, "B"),
    "NFH": Scanner(2.2, 5.0, 16.0, 8.0, 1.1, "SYNTHETIC-TOSHIBA", "PHANTOM Aquilion", 120, "FC08"),
    "ZCPH": Scanner(2.1, 3.75, 13.0, -3.0, 0.9, "SYNTHETIC-GE", "PHANTOM Optima", 100, "STANDARD"),
    "TA": Scanner(3.0, 5.0, 12.0, 0.0, 1.2, "SYNTHETIC-A", "PHANTOM-A"),
    "TB": Scanner(3.2, 6.0, 15.0, 5.0, 1.4, "SYNTHETIC-B", "PHANTOM-B"),
    "TX": Scanner(3.0, 5.0, 14.0, -5.0, 1.2, "SYNTHETIC-X", "PHANTOM-X"),
}

_FORMATS = {
    # name: (image_format, tumor_mask_format, clinical_format, decoy_fraction, dicom_compression)
    "SPH": ("dicom", "dicom-seg", "xlsx", 0.15, "jpeg-ls"),
    "ZCPH": ("dicom", "dicom-seg", "xlsx", 0.15, "jpeg-ls"),
    "NFH": ("nifti", "nifti", "xlsx", 0.0, "none"),
    "TB": ("dicom", "dicom-seg", "xlsx", 0.3, "none"),
    "TX": ("nifti", "nifti", "xlsx", 0.0, "none"),
}

_SIZES = {
    "tiny": {"TA": (20, 3), "TB": (20, 3), "TX": (20, 3)},
    "demo": {"YPH": (24, 3), "ZPH": (48, 6), "SPH": (22, 3), "NFH": (18, 2), "ZCPH": (34, 4)},
    "paper": {"YPH": (60, 8), "ZPH": (120, 15), "SPH": (55, 7), "NFH": (46, 5), "ZCPH": (85, 10)},
    # the paper's training centres at 4× (1,124 / 140) and a 2,000-patient external centre
    "benchmark": {
        "YPH": (240, 32), "ZPH": (480, 60), "SPH": (220, 28), "NFH": (184, 20), "ZCPH": (2000, 235),
    },
}

# a centre not named in a preset: (n_patients, n_events) by role
_ROLE_DEFAULT = {
    "tiny": {"train": (20, 3), "external": (20, 3)},
    "demo": {"train": (28, 4), "external": (34, 4)},
    "paper": {"train": (70, 9), "external": (85, 10)},
    "benchmark": {"train": (280, 36), "external": (2000, 235)},
}


def _default_scanner(center: str, preset: str) -> Scanner:
    from mtnet.seeds import derive_seed

    h = derive_seed(0, "scanner", center)
    coarse = preset == "tiny"
    return Scanner(
        spacing_xy=(3.0 if coarse else 1.8) + 0.1 * (h % 5),
        thickness=(5.0 if coarse else 2.5) + 0.5 * ((h >> 3) % 4),
        noise_hu=10.0 + (h >> 5) % 8,
        offset_hu=float((h >> 8) % 13 - 6),
        blur_mm=0.8 + 0.1 * ((h >> 12) % 5),
    )


def center_preset(settings: dict) -> CenterPreset:
    """The generator settings of one centre: preset defaults, then the config's overrides."""
    preset, center, role = settings["preset"], settings["center"], settings["role"]
    if preset not in PRESETS:
        raise InputError(f"unknown synthetic preset {preset!r}", center=center, fix=f"use one of {', '.join(PRESETS)}")
    n, k = _SIZES[preset].get(center, _ROLE_DEFAULT[preset][role])
    n = int(settings.get("n_patients", n))
    if "n_events" in settings:
        k = int(settings["n_events"])
    elif "n_patients" in settings:
        k = max(1, round(n * _ROLE_DEFAULT[preset][role][1] / _ROLE_DEFAULT[preset][role][0]))
    if not 1 <= k < n:
        raise InputError(f"synthetic n_events={k} is not in [1, n_patients={n})", center=center,
                         fix="set synthetic.n_events below synthetic.n_patients")
    img, seg, clin, decoy, compression = _FORMATS.get(center, ("nifti", "nifti", "csv", 0.0, "none"))
    img = settings.get("image_format", img)
    compression = settings.get("dicom_compression", compression)
    seg = settings.get("tumor_mask_format", seg)
    clin = settings.get("clinical_format", clin)
    if seg == "dicom-seg" and img != "dicom":
        raise InputError("synthetic tumor_mask_format dicom-seg needs DICOM images", center=center,
                         fix="set synthetic.image_format: dicom or tumor_mask_format: nifti")
    tiny_center = center in ("TA", "TB", "TX")
    scanner = _SCANNERS.get(center) if (preset == "tiny") == tiny_center else None
    scanner = scanner or _default_scanner(center, preset)
    dicom = img == "dicom"
    return CenterPreset(n, k, img, seg, clin, scanner, decoy if dicom else 0.0,
                        compression if dicom else "none")
