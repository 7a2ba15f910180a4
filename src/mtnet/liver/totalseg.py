"""TotalSegmentator backend (optional extra): its liver class, weights from a local folder.

Runs the ``TotalSegmentator`` command line (Wasserthal et al., Radiol Artif Intell 2023)
with ``--roi_subset liver``, usage statistics off (a private ``TOTALSEG_HOME_DIR``) and
``TOTALSEG_WEIGHTS_PATH`` pointing at the configured weights folder, so nothing is ever downloaded at run time. Where the weights
folder or the program is absent it fails with one clear error before any patient is read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import SimpleITK as sitk

from mtnet.errors import InputError
from mtnet.imaging import resample_mask

EXECUTABLE = "TotalSegmentator"
LIVER_FILE = "liver.nii.gz"
# the nnU-Net model folders that segment the liver: v2 "organs" part, v1 task 251
LIVER_MODELS = ("Dataset291_*", "Task251_*")


def check_available(settings: dict, center=None) -> tuple[str, Path]:
    """(executable, weights folder), or an InputError saying what is missing."""
    weights = (settings.get("totalsegmentator") or {}).get("weights_dir")
    if not weights:
        raise InputError(
            "liver backend 'totalsegmentator' needs local weights, but "
            "liver.totalsegmentator.weights_dir is not set", center=center,
            fix="set liver.totalsegmentator.weights_dir to a folder holding TotalSegmentator's "
            "weights (they are never downloaded at run time), or use another liver backend",
        )
    weights = Path(weights)
    if not weights.is_dir() or not any(weights.iterdir()):
        raise InputError(
            "TotalSegmentator weights folder is absent or empty", center=center, path=weights,
            fix="copy TotalSegmentator's weights there (nnUNet results folders), or use another liver backend",
        )
    if not any(any(weights.glob(pattern)) for pattern in LIVER_MODELS):
        raise InputError(
            "TotalSegmentator weights folder lacks the model holding the liver "
            f"({' or '.join(LIVER_MODELS)}); TotalSegmentator would try to download it",
            center=center, path=weights,
            fix="copy that model folder into the weights folder, or use another liver backend",
        )
    exe = shutil.which(EXECUTABLE)
    if exe is None:
        raise InputError(
            f"liver backend 'totalsegmentator': the program '{EXECUTABLE}' is not installed",
            center=center,
            fix="install the optional extra (pip install TotalSegmentator) in the workflow's "
            "environment, or use another liver backend",
        )
    return exe, weights


def command(exe: str, image_path: Path, out_dir: Path, threads: int) -> list[str]:
    """The command line: liver only, CPU-friendly defaults, no statistics upload."""
    return [
        exe, "-i", str(image_path), "-o", str(out_dir), "--roi_subset", "liver",
        "--nr_thr_resamp", str(threads), "--nr_thr_saving", "1",
    ]


def environment(weights: Path, home: Path) -> dict[str, str]:
    """Weights from the configured folder (``TOTALSEG_WEIGHTS_PATH``) and a private
    ``TOTALSEG_HOME_DIR`` whose config.json turns usage statistics off."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.json").write_text(
        json.dumps({"totalseg_id": "mtnet", "send_usage_stats": False, "prediction_counter": 0})
    )
    env = dict(os.environ)
    env["TOTALSEG_WEIGHTS_PATH"] = str(weights)
    env["TOTALSEG_HOME_DIR"] = str(home)
    return env


def segment(image: sitk.Image, exe: str, weights: Path, threads: int = 1,
            center=None, patient=None) -> sitk.Image:
    """Liver mask (uint8) on the image's grid, from TotalSegmentator's liver class."""
    with tempfile.TemporaryDirectory(prefix="mtnet-totalseg-") as tmp:
        tmp = Path(tmp)
        src = tmp / "ct.nii.gz"
        sitk.WriteImage(image, str(src))
        proc = subprocess.run(
            command(exe, src, tmp / "seg", threads), env=environment(weights, tmp / "home"),
            capture_output=True, text=True,
        )
        out = tmp / "seg" / LIVER_FILE
        if proc.returncode != 0 or not out.exists():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise InputError(
                f"TotalSegmentator failed (exit {proc.returncode}): {tail}",
                center=center, patient=patient,
                fix="check the weights folder matches the installed TotalSegmentator version",
            )
        return resample_mask(sitk.ReadImage(str(out)), image)
