"""Imaging helpers every stage shares: grids, resampling, connected components, montages,
and the map of a stage over a center's patients.

Conventions (docs/data_contracts.md): SimpleITK images in LPS; NumPy arrays (z, y, x);
config spacings and grids (x, y, z). Images are resampled with linear interpolation (air,
:data:`AIR_HU`, outside the field of view), binary masks with nearest neighbour (0 outside);
:func:`fraction_to_grid` carries a mask or a probability linearly and thresholds it, for
going between a coarse working grid and a fine one. Montages use one HU window,
:data:`MONTAGE_WINDOW_HU` (the abdominal soft-tissue window, width 400 HU, level 40 HU).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mtnet.errors import InputError

AIR_HU = -1024
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
MONTAGE_WINDOW_HU = (-160, 240)
NIFTI = ".nii.gz"


# --------------------------------------------------------------------------- grids


def grid_difference(a: sitk.Image, b: sitk.Image, tol_mm: float = 1e-3) -> str | None:
    """None when ``a`` and ``b`` share size, spacing, origin and direction, else what differs.

    The origin's tolerance grows to 1% of the smallest voxel: NIfTI headers round it.
    """
    if a.GetSize() != b.GetSize():
        return f"size {a.GetSize()} vs {b.GetSize()}"
    if not np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol_mm):
        return f"spacing {_rounded(a.GetSpacing(), 4)} vs {_rounded(b.GetSpacing(), 4)}"
    if not np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-4):
        return "direction differs"
    if not np.allclose(a.GetOrigin(), b.GetOrigin(), atol=max(tol_mm, 0.01 * min(a.GetSpacing()))):
        return f"origin {_rounded(a.GetOrigin(), 3)} vs {_rounded(b.GetOrigin(), 3)}"
    return None


def _rounded(values, digits: int) -> tuple:
    return tuple(round(float(v), digits) for v in values)


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return grid_difference(a, b) is None


def same_voxel_centres(a: sitk.Image, b: sitk.Image, tol_voxel: float = 0.01) -> bool:
    """True when ``b``'s voxel centres are exactly ``a``'s, up to axis order and flips (e.g. the
    same grid stored RAS by one tool and LPS by another): a's corner voxels land on b's corner
    voxels, within ``tol_voxel`` of a voxel."""
    if sorted(a.GetSize()) != sorted(b.GetSize()):
        return False
    corners_b = set()
    for idx in itertools.product(*[(0, n - 1) for n in a.GetSize()]):
        point = a.TransformIndexToPhysicalPoint([int(i) for i in idx])
        cont = np.array(b.TransformPhysicalPointToContinuousIndex(point))
        if np.abs(cont - np.rint(cont)).max() > tol_voxel:
            return False
        corners_b.add(tuple(int(v) for v in np.rint(cont)))
    return corners_b == set(itertools.product(*[(0, n - 1) for n in b.GetSize()]))


def describe_grid(image: sitk.Image) -> str:
    spacing = ",".join(f"{s:g}" for s in image.GetSpacing())
    origin = ",".join(f"{o:.1f}" for o in image.GetOrigin())
    return f"size {'x'.join(map(str, image.GetSize()))}, spacing {spacing} mm, origin {origin}"


@dataclass(frozen=True)
class Grid:
    """A grid without pixels: size, origin, spacing (x, y, z) and direction."""

    size: tuple
    origin: tuple
    spacing: tuple
    direction: tuple = IDENTITY

    @classmethod
    def of(cls, image: sitk.Image) -> "Grid":
        return cls(image.GetSize(), image.GetOrigin(), image.GetSpacing(), image.GetDirection())


def covering_grid(image: sitk.Image, spacing_xyz) -> Grid:
    """An identity-direction grid of ``spacing_xyz`` over the bounding box of ``image``'s voxel
    centres: origin = the box's minimum corner, size = floor(extent / spacing) + 1 per axis."""
    size = np.array(image.GetSize())
    corners = np.array([image.TransformContinuousIndexToPhysicalPoint([float(c) for c in idx])
                        for idx in itertools.product(*[(0, n - 1) for n in size])])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    spacing = np.asarray(spacing_xyz, dtype=float)
    out_size = np.floor((hi - lo) / spacing + 1e-4).astype(int) + 1
    return Grid(tuple(int(v) for v in out_size), tuple(float(v) for v in lo),
                tuple(float(v) for v in spacing))


def image_fingerprint(image: sitk.Image) -> str:
    """SHA-256 of an image's voxels and spacing (not its origin, a header detail)."""
    h = hashlib.sha256()
    h.update(repr((image.GetSize(), tuple(round(s, 4) for s in image.GetSpacing()))).encode())
    h.update(np.ascontiguousarray(sitk.GetArrayViewFromImage(image)).tobytes())
    return h.hexdigest()


def native_spacing(image: sitk.Image) -> tuple:
    """The scanner's spacing along x, y, z (LPS): for each physical axis, the spacing of the
    image axis closest to it (the direction cosines permute and flip the axes)."""
    direction = np.abs(np.asarray(image.GetDirection()).reshape(3, 3))
    return tuple(float(image.GetSpacing()[int(np.argmax(direction[p]))]) for p in range(3))


def kept_spacing(image: sitk.Image, spacing_xyz, upsample: bool = False) -> tuple:
    """``spacing_xyz``, but never finer than the scanner sampled an axis unless ``upsample``."""
    wanted = tuple(float(s) for s in spacing_xyz)
    if upsample:
        return wanted
    return tuple(max(w, n) for w, n in zip(wanted, native_spacing(image)))


def spacing_grid(image: sitk.Image, spacing) -> Grid:
    """A grid of ``spacing`` (one value: isotropic) over the same extent as ``image``; the
    first voxel's extent starts where ``image``'s does."""
    spacing = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, float), (3,)))
    size = [max(1, int(round(n * sp / s))) for n, sp, s in zip(image.GetSize(), image.GetSpacing(), spacing)]
    origin = np.array(image.GetOrigin()) + np.asarray(image.GetDirection()).reshape(3, 3) @ (
        (np.array(spacing) - np.array(image.GetSpacing())) / 2.0)
    return Grid(tuple(size), tuple(float(v) for v in origin), spacing, image.GetDirection())


def reorient(image: sitk.Image) -> sitk.Image:
    """The image with an identity direction (LPS), axes permuted/flipped without resampling."""
    if np.allclose(image.GetDirection(), np.eye(3).ravel()):
        return image
    return sitk.DICOMOrient(image, "LPS")


# --------------------------------------------------------------------------- resampling

_INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}


def resample(image: sitk.Image, onto, interpolator: str = "linear", default: float = 0.0,
             pixel=sitk.sitkFloat32) -> sitk.Image:
    """``image`` resampled onto ``onto`` (an image or a :class:`Grid`), identity transform."""
    interp = _INTERPOLATORS[interpolator]
    if isinstance(onto, Grid):
        return sitk.Resample(image, [int(v) for v in onto.size], sitk.Transform(), interp,
                             tuple(onto.origin), tuple(onto.spacing), tuple(onto.direction),
                             float(default), pixel)
    return sitk.Resample(image, onto, sitk.Transform(), interp, float(default), pixel)


def resample_image(image: sitk.Image, onto, default: float = AIR_HU) -> sitk.Image:
    """A CT resampled linearly (float32 HU); air outside the field of view."""
    return resample(image, onto, "linear", default, sitk.sitkFloat32)


def resample_hu(image: sitk.Image, onto) -> sitk.Image:
    """A CT resampled linearly and stored as int16 HU (rounded; nothing below air)."""
    arr = np.rint(sitk.GetArrayFromImage(resample_image(image, onto)))
    out = sitk.GetImageFromArray(np.clip(arr, AIR_HU, np.iinfo(np.int16).max).astype(np.int16))
    _copy_grid(out, onto)
    return out


def resample_mask(mask: sitk.Image, onto) -> sitk.Image:
    """A binary mask (anything non-zero) by nearest neighbour, uint8 0/1."""
    return resample(sitk.Cast(mask != 0, sitk.sitkUInt8), onto, "nearest", 0, sitk.sitkUInt8)


def fraction_to_grid(image: sitk.Image, onto) -> np.ndarray:
    """A mask (0/1) or probability resampled linearly: the (z, y, x) float32 array on ``onto``."""
    return sitk.GetArrayFromImage(resample(sitk.Cast(image, sitk.sitkFloat32), onto, "linear", 0.0))


def threshold_to_grid(image: sitk.Image, onto, threshold: float = 0.5) -> np.ndarray:
    """A mask or probability carried linearly onto ``onto`` and kept where >= ``threshold``."""
    return fraction_to_grid(image, onto) >= threshold


def _copy_grid(out: sitk.Image, onto) -> None:
    if isinstance(onto, Grid):
        out.SetOrigin(onto.origin)
        out.SetSpacing(onto.spacing)
        out.SetDirection(onto.direction)
    else:
        out.CopyInformation(onto)


def array_image(array: np.ndarray, like, dtype=np.uint8) -> sitk.Image:
    """An image from a (z, y, x) array, on the grid of ``like`` (an image or a Grid)."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=dtype))
    _copy_grid(out, like)
    return out


def patient_ids(folder) -> list[str]:
    """Patient IDs of the ``{pid}.nii.gz`` files of a stage's folder, sorted."""
    return sorted(p.name[: -len(NIFTI)] for p in Path(folder).glob(f"*{NIFTI}"))


def read_mask(path, image: sitk.Image, *, what: str, center=None, patient=None,
              resample_other: bool = False) -> sitk.Image:
    """A binary mask (uint8 0/1) that must lie on ``image``'s grid; one-line errors otherwise.

    With ``resample_other`` (QC references such as the generator's masks, which keep the
    scanner's grid) a mask on another grid is carried onto the image's by nearest neighbour;
    it must still overlap the image.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} mask is missing", center=center, patient=patient, path=path,
                         fix=f"provide {path.name} for every image")
    mask = sitk.ReadImage(str(path))
    if resample_other and not same_grid(mask, image):
        moved = resample_mask(mask, image)
        if sitk.GetArrayViewFromImage(mask).any() and not sitk.GetArrayViewFromImage(moved).any():
            raise InputError(
                f"{what} mask ({describe_grid(mask)}) does not overlap its image "
                f"({describe_grid(image)})", center=center, patient=patient, path=path,
                fix="check that the mask belongs to this image")
        mask = moved
    if not same_grid(mask, image):
        raise InputError(
            f"{what} mask is on another grid ({describe_grid(mask)}) than its image "
            f"({describe_grid(image)})", center=center, patient=patient, path=path,
            fix="resample the mask onto the ingested image grid")
    out = sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)
    out.CopyInformation(image)
    return out


def window(hu: np.ndarray, hu_window) -> np.ndarray:
    """Clip to [low, high] and scale linearly to [0, 1]: (clip(HU) - low) / (high - low)."""
    low, high = float(hu_window[0]), float(hu_window[1])
    return ((np.clip(hu, low, high) - low) / (high - low)).astype(np.float32)


# --------------------------------------------------------------------------- patients


_TASK = None  # the per-patient function of a process map, inherited by the forked workers


def _run_task(pid):
    return _TASK(pid)


def map_patients(fn, patients, workers: int = 1, *, center=None, processes: bool = False) -> list:
    """``[fn(pid) for pid in patients]`` on ``workers`` threads (or forked processes), in the
    order of ``patients``.

    A stage's patients are independent; their heavy parts (SimpleITK filters, NumPy, SciPy's
    ndimage) release the GIL, so threads run them side by side without copying volumes.
    ``processes``: for work that holds the GIL (pydicom parsing every DICOM file): the
    workers are forked, so ``fn`` (a closure too) is not pickled, only the patient IDs and
    the results (small: table rows, 2D montage slices), and log records go to the same
    handlers. Results come back in patient order whatever finishes first, so a stage's
    outputs do not depend on ``workers``. The first failing patient, in that order, is
    raised once the patients already running have finished; the others are cancelled. An
    error other than :class:`InputError` (which names its patient) gets a note naming the
    patient.
    """
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    def one(pid):
        try:
            return fn(pid)
        except InputError:
            raise
        except Exception as err:
            err.add_note(f"while processing center {center}, patient {pid}" if center is not None
                         else f"while processing patient {pid}")
            raise

    global _TASK
    patients = list(patients)
    workers = max(1, min(int(workers), len(patients)))
    if workers == 1:
        return [one(pid) for pid in patients]
    if processes:
        import multiprocessing

        _TASK = one
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
        futures = [pool.submit(_run_task, pid) for pid in patients]
    else:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="patient")
        futures = [pool.submit(one, pid) for pid in patients]
    try:
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _TASK = None


# --------------------------------------------------------------------------- components

_STRUCTURES = {6: None, 26: np.ones((3, 3, 3), bool)}


def bounding_box(mask: np.ndarray, pad: int = 0) -> tuple[slice, ...]:
    """Slices of ``mask``'s bounding box grown by ``pad`` voxels, clipped to the array
    (the whole array when the mask is empty)."""
    box = []
    for axis, n in enumerate(mask.shape):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(0, n) if hit.size == 0 else
                   slice(max(0, int(hit[0]) - pad), min(n, int(hit[-1]) + 1 + pad)))
    return tuple(box)


def label_components(mask: np.ndarray, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Connected components of a 3D mask, 6- or 26-connected: (labels, count)."""
    from scipy import ndimage as ndi

    labels, n = ndi.label(np.asarray(mask, bool), structure=_STRUCTURES[connectivity])
    return labels, int(n)


def largest_component(mask: np.ndarray, connectivity: int = 6) -> np.ndarray:
    """The largest connected component (bool); the mask itself when it has none."""
    labels, n = label_components(mask, connectivity)
    if n <= 1:
        return np.asarray(mask, bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == sizes.argmax()


# --------------------------------------------------------------------------- montages


def montage_panel(label: str, image: np.ndarray, outlines: list[tuple[np.ndarray | None, str]],
                  spacing_zyx=(1.0, 1.0, 1.0), views=("axial",), centre: np.ndarray | None = None) -> dict:
    """One patient's views for :func:`montage`: slices through the centroid of ``centre`` (else
    the middle), the image and each (mask, colour) outline cut there; only the 2D slices are
    kept, never volumes."""
    from scipy import ndimage as ndi

    if centre is not None and np.any(centre):
        z, y, _ = (int(round(v)) for v in ndi.center_of_mass(np.asarray(centre, bool)))
    else:
        z, y = image.shape[0] // 2, image.shape[1] // 2
    sz, sy, sx = (float(v) for v in spacing_zyx)
    cut = {"axial": (lambda a: np.array(a[z]), sy / sx),
           "coronal": (lambda a: np.array(a[:, y][::-1]), sz / sx)}
    return {"label": label,
            "views": [{"image": cut[v][0](image), "aspect": cut[v][1],
                       "outlines": [(cut[v][0](m), c) for m, c in outlines if m is not None]}
                      for v in views]}


def montage(panels: list[dict], path, title: str, columns: int = 6, dpi: int = 100) -> None:
    """A grid of panels (:func:`montage_panel`): grey image in :data:`MONTAGE_WINDOW_HU`,
    each mask outlined in its colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_views = max((len(p["views"]) for p in panels), default=1)
    cols = max(1, min(columns, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols * n_views, figsize=(2.1 * cols * n_views, 2.3 * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        for k, view in enumerate(p["views"]):
            ax = axes[r, c * n_views + k]
            ax.imshow(view["image"], cmap="gray", vmin=MONTAGE_WINDOW_HU[0], vmax=MONTAGE_WINDOW_HU[1],
                      interpolation="nearest", aspect=view["aspect"])
            for mask, color in view["outlines"]:
                if mask.any() and not mask.all():
                    ax.contour(mask.astype(np.uint8), levels=[0.5], colors=color, linewidths=0.6)
        axes[r, c * n_views].set_title(p["label"], fontsize=7, loc="left")
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no patient", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
