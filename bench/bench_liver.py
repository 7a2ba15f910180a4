"""Liver segmentation: seconds per CT for each backend (goal: classical <= 10 s at 1.5 mm).

The CT is TotalSegmentator's example CT (../shared/data) resampled as ingestion does
(identity direction, 1.5 mm isotropic, int16); where that is absent, the test phantom at
1.5 mm. ``classical``: the whole backend (NumPy/SciPy, one thread). ``unet``: inference of
the default network (weights do not change its cost) with 2 torch threads.
``totalsegmentator``: not installed here (optional extra), so not timed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MTNET_SHARED_DATA", REPO.parent / "shared" / "data"))
GOAL_CLASSICAL_S = 10.0


def _ct() -> tuple[sitk.Image, str]:
    from mtnet import imaging

    path = SHARED / "totalsegmentator_example_ct" / "example_ct.nii.gz"
    if path.exists():
        img = imaging.reorient(sitk.ReadImage(str(path)))
        return imaging.resample_hu(img, imaging.spacing_grid(img, 1.5)), "totalsegmentator example_ct at 1.5 mm"
    sys.path.insert(0, str(REPO / "tests"))
    from liver_phantom import abdomen

    return abdomen(1.5, seed=0)[0], "test phantom at 1.5 mm"


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(sorted(times)[len(times) // 2], 3)


def run(repeats: int = 3) -> dict:
    import torch

    from mtnet.config import section
    from mtnet.liver import classical, unet

    image, what = _ct()
    classical_s = _median_time(lambda: classical.segment(image), repeats)
    cfg = section("liver")["unet"]
    torch.manual_seed(0)
    model = unet.LoadedModel(unet.build_model(cfg["channels"]).eval(),
                             {k: cfg[k] for k in ("spacing_mm", "crop", "channels", "hu_window")}, 2)
    unet_s = _median_time(lambda: unet.predict(model, image), repeats)
    return {
        "ct": what,
        "size_xyz": list(image.GetSize()),
        "seconds_per_ct": {"classical": classical_s, "unet_inference": unet_s,
                           "totalsegmentator": None},
        "goal": {"classical_s": GOAL_CLASSICAL_S},
        "met": classical_s <= GOAL_CLASSICAL_S,
        "threads": {"classical": 1, "unet": 2},
    }


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    print(run())
