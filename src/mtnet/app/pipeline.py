"""New patients through the workflow's own stages, as one ``external`` center.

:func:`score` writes the patients as a ``source: files`` delivery (docs/data_contracts.md:
``center.yaml``, ``images/``, ``tumor_masks/``, ``clinical.csv``) in a work folder, then
calls the stage functions the workflow's scripts call, with the settings the model folder
recorded: ingestion, the liver (the recorded default backend, which a delivery without
liver masks gets in the workflow), the tumor stage, the radiomics where the model reads
them, and the registry's ``predict`` for role ``external``. Risks are read back from the
predictions file the family wrote; the risk group and the H-score group follow
:mod:`mtnet.app.served`.

A stage's :class:`~mtnet.errors.InputError` comes back as :class:`~mtnet.app.inputs.Refused`
naming the field it concerns (``ct``, ``tumor_mask`` or a factor), without the work
folder's paths.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from mtnet.app.inputs import CT, TUMOR_MASK, FieldProblem, Refused, place_ct, place_mask
from mtnet.errors import InputError

log = logging.getLogger(__name__)

APPLET_CENTER = "NEW"
# the applet's rule for the portal-phase series of a DICOM upload (a center's `phase:`
# entry): the one series whose description says portal, venous or PV
DEFAULT_PHASE = {"series_description": r"portal|venous|\bpv\b"}
DEFAULT_MAX_UNZIPPED = 4 * 2**30


@dataclass
class Patient:
    """One new patient: a pseudonymous ID, the factors (canonical column -> value), the CT
    (``ct_kind``: folder | zip | nifti | nifti-gz) and the tumor mask (``mask_kind``:
    dicom | nifti | nifti-gz); ``labels`` say how the user named each file (messages)."""

    patient_id: str
    factors: dict
    ct: Path
    ct_kind: str
    mask: Path
    mask_kind: str
    labels: dict = field(default_factory=dict)


@dataclass
class Result:
    patient_id: str
    model: str
    risk: float
    risk_group: str
    threshold: float
    h_score: float | None = None
    h_score_group: str | None = None
    h_score_median: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    picture: str | None = None
    warnings: list = field(default_factory=list)
    # seconds of each stage (for the whole batch)
    stage_seconds: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ the delivery


def write_delivery(patients: list[Patient], folder: Path, *, phase=None, tumor_segment: int = 1,
                   max_unzipped: int = DEFAULT_MAX_UNZIPPED) -> Path:
    """The patients as a delivery a center's entry describes (``center.yaml``)."""
    import pandas as pd

    from mtnet.factors import CANONICAL_COLUMNS

    image_kinds = {"dicom" if p.ct_kind in ("folder", "zip") else "nifti" for p in patients}
    mask_kinds = {"dicom-seg" if p.mask_kind == "dicom" else "nifti" for p in patients}
    if len(image_kinds) > 1 or len(mask_kinds) > 1:
        what = CT if len(image_kinds) > 1 else TUMOR_MASK
        raise Refused([FieldProblem(what, "the batch mixes DICOM and NIfTI files",
                                    "give one format for every patient (one delivery)")])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for p in patients:
        place_ct(p.ct, p.ct_kind, folder / "images", p.patient_id, max_unzipped)
        place_mask(p.mask, p.mask_kind, folder / "tumor_masks", p.patient_id)
    rows = [{"patient_id": p.patient_id, **{c: p.factors.get(c) for c in CANONICAL_COLUMNS[1:]}}
            for p in patients]
    pd.DataFrame(rows, columns=CANONICAL_COLUMNS).to_csv(folder / "clinical.csv", index=False)
    entry = {"source": "files", "images": "images", "image_format": image_kinds.pop(),
             "tumor_masks": "tumor_masks", "tumor_mask_format": mask_kinds.pop(),
             "tumor_segment": int(tumor_segment), "clinical": "clinical.csv",
             "phase": dict(phase or DEFAULT_PHASE)}
    (folder / "center.yaml").write_text(yaml.safe_dump(entry, sort_keys=False))
    return folder


# ------------------------------------------------------------------ the stages


def stage_paths(work: Path, center: str) -> dict:
    ingest, liver, tumor = work / "ingest", work / "liver", work / "tumor"
    return {
        "ingest": {"images": ingest / "images", "tumor": ingest / "tumor", "liver": ingest / "liver",
                   "clinical": ingest / "clinical.tsv", "qc": ingest / "qc.tsv",
                   "montage": ingest / "qc_montage.png", "missing": ingest / "missing_columns.tsv",
                   "exclusions": ingest / "exclusions.tsv"},
        "liver": {"masks": liver / "masks", "qc": liver / "qc.tsv", "montage": liver / "montage.png"},
        "tumor": {"lesions": tumor / "lesions.tsv", "roi": tumor / "roi", "rings": tumor / "rings"},
        # radiomics_lr names a features table's center by its folder
        "features": {"table": work / "features" / center / "radiomics.tsv",
                     "sidecar": work / "features" / center / "radiomics.json",
                     "params": work / "radiomics.yaml"},
        "predictions": work / "predictions.tsv",
    }


def run_stages(served, delivery: Path, work: Path, center: str, threads: int = 1) -> dict:
    """Ingest, liver, tumor (and features) of the delivery; the predictions file."""
    from mtnet.io.center import ingest_center
    from mtnet.liver import segment_center
    from mtnet.tumor import process_center

    import time

    paths = stage_paths(work, center)
    p = {k: {n: str(v) for n, v in d.items()} if isinstance(d, dict) else str(d)
         for k, d in paths.items()}
    seconds, clock = {}, [time.perf_counter()]

    def done(stage):
        now = time.perf_counter()
        seconds[stage] = round(now - clock[0], 3)
        clock[0] = now
        log.info("%s: %.1f s", stage, seconds[stage])

    ingest = dict(served.stage_settings("ingest"), unmatched="error", threads=int(threads))
    ingest_center(center, {"data": str(delivery)}, p["ingest"], {"ingest": ingest}, threads=threads)
    done("ingest")
    liver_inputs = {"images": p["ingest"]["images"], "provided": p["ingest"]["liver"],
                    "tumor": p["ingest"]["tumor"]}
    if served.liver_model is not None:
        liver_inputs["model"] = str(served.liver_model)
    segment_center(center, served.liver_backend, liver_inputs, p["liver"],
                   served.stage_settings("liver"), threads)
    done("liver")
    process_center(center, {"images": p["ingest"]["images"], "tumor": p["ingest"]["tumor"],
                            "clinical": p["ingest"]["clinical"], "liver": p["liver"]["masks"]},
                   p["tumor"], served.stage_settings("tumor"))
    done("tumor")
    spec = served.spec
    if "features" in spec.inputs:
        from mtnet.features import extract_center

        paths["features"]["params"].write_text(served.radiomics_params)
        extract_center(center, p["ingest"]["images"], p["ingest"]["tumor"], p["tumor"]["rings"],
                       p["tumor"]["lesions"], p["features"]["params"], out_tsv=p["features"]["table"],
                       sidecar_path=p["features"]["sidecar"], threads=threads)
        done("features")
    available = {"clinical": p["ingest"]["clinical"], "features": p["features"]["table"],
                 "roi": p["tumor"]["roi"]}
    inputs = {"model": str(served.folder),
              **{k: available[k] for k in spec.inputs if k != "splits"}}
    settings = served.stage_settings(spec.settings) if spec.settings else {}
    spec.call("predict", inputs=inputs, output=p["predictions"], center=center, role="external",
              settings=settings, threads=threads)
    done("predict")
    paths["seconds"] = seconds
    return paths


def _field_of(err: InputError, roots: dict) -> str:
    """The field a stage's error concerns, from its column or the path it names."""
    if err.column:
        return err.column
    if not err.path:
        return "form"
    path = Path(err.path)
    for root in roots.values():
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            continue
        if "tumor_masks" in parts or parts[:2] == ("ingest", "tumor") or "rings" in parts:
            return TUMOR_MASK
        if "images" in parts or "liver" in parts:
            return CT
    return "form"


def _refusal(err: InputError, roots: dict, patients: list[Patient]) -> Refused:
    field_name = _field_of(err, roots)
    problem = err.problem
    if err.patient and len(patients) > 1:
        problem = f"patient {err.patient}: {problem}"
    return Refused([FieldProblem(field_name, problem, err.fix)], patient=err.patient)


# ------------------------------------------------------------------ scoring


def check_harmonisable(served, center: str, n: int) -> None:
    """A radiomics model with ComBat estimates a new center's batch effect from that
    center's own patients: refuse fewer than two (the workflow would refuse them too)."""
    if served.needs_batch_of_own_patients(center) and n < 2:
        raise Refused([FieldProblem(
            "model", f"{served.name} harmonises a new center's radiomics with ComBat, estimated "
            f"from that center's own patients, and one patient is not enough",
            "score at least two patients of the same center together (mtnet predict --batch), "
            f"or name the training center they come from ({', '.join(served.combat_batches)}) "
            "with --center")])


def score(served, patients: list[Patient], work, *, center: str = APPLET_CENTER, phase=None,
          tumor_segment: int = 1, max_unzipped: int = DEFAULT_MAX_UNZIPPED, pictures=None,
          threads: int = 1) -> list[Result]:
    """Risks of ``patients`` (one center) by the served model; pictures into ``pictures``
    (``<patient_id>.png``) when given. ``work`` is left for the caller to remove."""
    import pandas as pd

    from mtnet.tables import read_tsv

    work = Path(work)
    check_harmonisable(served, center, len(patients))
    ids = [p.patient_id for p in patients]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise Refused([FieldProblem("patient_id", f"{dup} is listed twice",
                                    "give each patient once")])
    delivery = work / "delivery"
    roots = {"delivery": delivery, "work": work}
    try:
        write_delivery(patients, delivery, phase=phase, tumor_segment=tumor_segment,
                       max_unzipped=max_unzipped)
        paths = run_stages(served, delivery, work, center, threads)
    except Refused:
        raise
    except InputError as err:
        raise _refusal(err, roots, patients) from None
    preds = read_tsv(paths["predictions"], required=("patient_id", "risk"), what="predictions")
    by_id = {str(r["patient_id"]): r for _, r in preds.iterrows()}
    intervals = risk_intervals(served, paths)
    results = []
    for p in patients:
        row = by_id.get(p.patient_id)
        if row is None or pd.isna(row["risk"]):
            raise Refused([FieldProblem("form", f"the model gave patient {p.patient_id} no risk")])
        risk = float(row["risk"])
        res = Result(p.patient_id, served.name, risk,
                     "high" if risk > served.threshold else "low", served.threshold)
        if "h_score" in row and not pd.isna(row["h_score"]):
            res.h_score = float(row["h_score"])
            res.h_score_median = served.h_score_median
            if served.h_score_median is not None:
                res.h_score_group = "high" if res.h_score > served.h_score_median else "low"
        if p.patient_id in intervals:
            res.ci_low, res.ci_high = intervals[p.patient_id]
        res.warnings = _warnings(paths, p.patient_id)
        res.stage_seconds = dict(paths["seconds"])
        if pictures is not None:
            res.picture = str(render_picture(served, res, paths, Path(pictures) / f"{p.patient_id}.png"))
        results.append(res)
    return results


# Families that give a 95% interval of a new patient's risk: family -> "module:function"
# taking (model folder, the clinical table of the scored patients) and returning
# {patient_id: (low, high)}. The others' results say "not provided by this model".
INTERVALS: dict[str, str] = {"clinical_lr": "mtnet.model.clinical_lr:risk_interval"}


def risk_intervals(served, paths: dict) -> dict:
    import importlib

    target = INTERVALS.get(served.spec.family)
    if not target:
        return {}
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)(served.folder,
                                                          paths["ingest"]["clinical"])


def _warnings(paths: dict, pid: str) -> list[str]:
    """What the stages flagged for the patient (ingest QC warnings, the liver volume outlier,
    a tumor diameter that disagrees with the table's)."""
    from mtnet.tables import read_tsv

    out = []
    qc = read_tsv(paths["ingest"]["qc"], what="ingest QC")
    row = qc[qc["patient_id"] == pid]
    if len(row) and isinstance(row["warnings"].iloc[0], str) and row["warnings"].iloc[0]:
        out += row["warnings"].iloc[0].split(" | ")
    liver = read_tsv(paths["liver"]["qc"], what="liver QC")
    row = liver[liver["patient_id"] == pid]
    if len(row) and int(row["volume_outlier"].iloc[0]) == 1:
        out.append(f"liver volume {row['volume_ml'].iloc[0]:.0f} mL is outside the expected range")
    lesions = read_tsv(paths["tumor"]["lesions"], what="lesions")
    row = lesions[lesions["patient_id"] == pid]
    if len(row) and row["diameter_disagreement"].iloc[0] == 1:
        out.append(f"target lesion {row['target_diameter_mm'].iloc[0]:.0f} mm in the mask vs "
                   f"max_diameter_mm {row['table_max_diameter_mm'].iloc[0]:.0f}")
    return out


# ------------------------------------------------------------------ the picture


def render_picture(served, result: Result, paths: dict, out: Path) -> Path:
    """Axial and coronal slices through the tumor, the liver outlined cyan and the tumor red,
    titled with the risk and its group."""
    import SimpleITK as sitk

    from mtnet.imaging import NIFTI, montage, montage_panel

    pid = result.patient_id
    image = sitk.ReadImage(str(paths["ingest"]["images"] / f"{pid}{NIFTI}"))
    arr = sitk.GetArrayFromImage(image)
    tumor = sitk.GetArrayFromImage(sitk.ReadImage(str(paths["ingest"]["tumor"] / f"{pid}{NIFTI}")))
    liver = sitk.GetArrayFromImage(sitk.ReadImage(str(paths["liver"]["masks"] / f"{pid}{NIFTI}")))
    from mtnet.app.inputs import DEFAULT_PATIENT

    who = "" if pid == DEFAULT_PATIENT else f"{pid}: "
    label = (f"{who}risk {result.risk:.3f}, {result.risk_group} risk "
             f"({'>' if result.risk_group == 'high' else '<='} {result.threshold:.3f})")
    panel = montage_panel(label, arr, [(liver.astype(bool), "cyan"), (tumor.astype(bool), "red")],
                          image.GetSpacing()[::-1], views=("axial", "coronal"),
                          centre=tumor.astype(bool))
    synthetic = "; synthetic training data" if served.synthetic else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    montage([panel], out, f"{served.name}: liver cyan, tumor red{synthetic}", dpi=150)
    return out


def format_risk(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    return f"{value:.{digits}f}"
