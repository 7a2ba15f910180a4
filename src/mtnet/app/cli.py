"""``mtnet predict`` and ``mtnet serve``: the applet from the command line and as a web page."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

EXIT_REFUSED = 2
# the config schema's center names (they become folder names)
CENTER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


def _model_arguments(p) -> None:
    p.add_argument("--model", required=True, type=Path,
                   help="a model folder of a finished run: results/models/<model> (or its model/)")
    p.add_argument("--liver-model", type=Path,
                   help="the liver UNet (results/liver/unet/model.pt) where the model's liver "
                   "backend is unet and the run's results/ folder is not around the model folder")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--series-description", metavar="REGEX",
                      help="the portal-phase rule for DICOM: the series whose description matches "
                      r"(default: portal|venous|\bpv\b, case-insensitive)")
    rule.add_argument("--series-number", type=int, metavar="N",
                      help="the portal-phase rule for DICOM: the series with this number")
    p.add_argument("--tumor-segment", type=int, default=1, metavar="N",
                   help="segment number (DICOM-SEG) or label value (NIfTI) of the tumor (default 1)")
    p.add_argument("--max-unzipped-mb", type=float, default=4096,
                   help="largest unpacked size of a DICOM zip, MiB (default 4096)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-v", "--verbose", action="store_true", help="log every stage's progress")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="one new patient's MVI risk (or a table of patients) from a trained model folder",
        description="Score a new patient with a model folder of a finished run: the same "
        "ingestion, liver segmentation, tumor handling and crop as the workflow, with the "
        "settings the folder recorded. Prints the risk, the risk group at the training "
        "centers' Youden threshold, the H-score and the 95%% interval where the model gives "
        "them; writes a PNG with the liver and tumor contours. docs/applet.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _model_arguments(p)
    one = p.add_argument_group("one patient")
    one.add_argument("--ct", type=Path, help="the portal-phase CT: a DICOM folder, a zip of DICOM "
                     "files, or a NIfTI file")
    one.add_argument("--tumor-mask", type=Path, help="the tumor mask: NIfTI or DICOM-SEG")
    one.add_argument("--clinical", type=Path, help="the factors: a CSV (header + one row) or a "
                     "JSON object; patient_id is taken from it when present")
    p.add_argument("--batch", type=Path, metavar="TABLE",
                   help="a CSV/TSV with patient_id, ct, tumor_mask (paths relative to the table) "
                   "and the factors, one row per patient, scored as one center")
    p.add_argument("--center", default=None,
                   help="the center the patients come from (default NEW: a center the model has "
                   "not seen); a training center's name uses its ComBat parameters")
    p.add_argument("--out", type=Path, default=Path("."),
                   help="folder of the pictures <patient_id>.png (default: the current folder)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_predict)

    s = subparsers.add_parser(
        "serve",
        help="the applet as a web page (a form for one patient's factors, CT and tumor mask)",
        description="Serve a model folder as a server-rendered web form (FastAPI + uvicorn). "
        "Uploads go to a per-request temporary folder that is removed afterwards; results are "
        "not stored; requests are scored one at a time. docs/applet.md.",
    )
    _model_arguments(s)
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8050)
    s.add_argument("--max-upload-mb", type=float, default=1024,
                   help="largest request (both uploads), MiB (default 1024)")
    s.add_argument("--queue", type=int, default=4,
                   help="requests that may wait while one is scored; more get a busy page (default 4)")
    s.add_argument("--tmp-dir", type=Path, default=None,
                   help="where the per-request temporary folders go (default: the system's)")
    s.set_defaults(func=run_serve)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("matplotlib", "PIL", "highdicom", "pydicom"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _phase(args) -> dict | None:
    if args.series_number is not None:
        return {"series_number": args.series_number}
    if args.series_description:
        return {"series_description": args.series_description}
    return None


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_REFUSED


def run_predict(args) -> int:
    import shutil
    import tempfile

    from mtnet.app import inputs as ins
    from mtnet.app.pipeline import APPLET_CENTER, score
    from mtnet.app.served import load_model
    from mtnet.errors import InputError

    _logging(args.verbose)
    single = [args.ct, args.tumor_mask, args.clinical]
    if args.batch is None and None in single:
        names = [n for n, v in zip(("--ct", "--tumor-mask", "--clinical"), single) if v is None]
        return _fail(f"{', '.join(names)} missing (fix: give --ct, --tumor-mask and --clinical, "
                     "or --batch TABLE)")
    if args.batch is not None and any(v is not None for v in single):
        return _fail("--batch scores a table: leave out --ct, --tumor-mask and --clinical")
    center = args.center or APPLET_CENTER
    if not CENTER_NAME.match(center):
        return _fail(f"--center {center[:40]!r}: not a center name (fix: letters, digits, '_' and "
                     "'-', starting with a letter, at most 32 characters)")
    work, patients = None, None
    try:
        served = load_model(args.model, args.liver_model)
        patients = (batch_patients(args.batch, served) if args.batch is not None
                    else [one_patient(args.ct, args.tumor_mask, args.clinical, served)])
        work = Path(tempfile.mkdtemp(prefix="mtnet-predict-"))
        results = score(served, patients, work, center=center, phase=_phase(args),
                        tumor_segment=args.tumor_segment,
                        max_unzipped=int(args.max_unzipped_mb * 2**20), pictures=args.out,
                        threads=args.threads)
    except ins.Refused as err:
        return _fail(_refusal_line(err, patients))
    except InputError as err:
        return _fail(str(err))
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        identity = served.describe()
        out = [{**r.as_dict(), "identity": identity} for r in results]
        print(json.dumps(out if args.batch is not None else out[0], indent=2))
    elif args.batch is not None:
        print_table(results)
    else:
        print_one(served, results[0])
    return 0


def _refusal_line(err, patients) -> str:
    """The first problem as one line, the field named as the user gave it."""
    problem = err.problems[0]
    label = problem.field
    if patients and len(patients) == 1 and problem.field in patients[0].labels:
        label = patients[0].labels[problem.field]
    elif problem.field in ("ct", "tumor_mask"):
        label = "--" + problem.field.replace("_", "-")
    more = f" [{len(err.problems) - 1} more problem(s): " + "; ".join(
        p.line() for p in err.problems[1:]) + "]" if len(err.problems) > 1 else ""
    prefix = f"patient {err.patient}, " if err.patient and patients and len(patients) > 1 else ""
    return prefix + problem.line(label) + more


def one_patient(ct, tumor_mask, clinical, served):
    """A patient of ``mtnet predict --ct --tumor-mask --clinical``, checked."""
    from mtnet.app import inputs as ins

    values = ins.read_clinical(clinical)
    return _patient(values, Path(ct), Path(tumor_mask), served,
                    {"ct": f"--ct {ct}", "tumor_mask": f"--tumor-mask {tumor_mask}"},
                    where=f"--clinical {clinical}")


def _patient(values: dict, ct: Path, mask: Path, served, labels: dict, where: str):
    from mtnet.app import inputs as ins
    from mtnet.app.pipeline import Patient

    pid = values.get("patient_id")
    pid = ins.DEFAULT_PATIENT if ins._blank(pid) else str(pid).strip()
    problems = ins.check_patient_id(pid) + ins.check_factors(values, served.factors)
    for name in ins.unknown_fields(values, ("ct", "tumor_mask")):
        logging.getLogger("mtnet.app").warning("%s: field %r is not a canonical column: ignored",
                                               where, name)
    ct_kind, mask_kind = "unknown", "unknown"
    if ct.is_dir():
        ct_kind = "folder"
    elif ct.is_file():
        ct_kind, more = ins.check_ct(ct)
        problems += more
    else:
        problems.append(ins.FieldProblem("ct", "not found", "give a DICOM folder, a zip or a NIfTI"))
    if mask.is_file():
        mask_kind, more = ins.check_mask(mask)
        problems += more
    else:
        problems.append(ins.FieldProblem("tumor_mask", "not found", "give a NIfTI or a DICOM-SEG"))
    if problems:
        raise ins.Refused(problems)
    return Patient(pid, {k: v for k, v in values.items() if k != "patient_id"}, ct, ct_kind,
                   mask, mask_kind, labels)


def batch_patients(table_path, served) -> list:
    """The patients of a ``--batch`` table (paths relative to the table's folder)."""
    from mtnet.app import inputs as ins

    table = ins.read_table(table_path)
    missing = [c for c in ("patient_id", "ct", "tumor_mask") if c not in table.columns]
    if missing:
        raise ins.Refused([ins.FieldProblem(missing[0], f"column missing in {Path(table_path).name}",
                                            "give patient_id, ct, tumor_mask and the factors")])
    base = Path(table_path).parent
    patients, problems = [], []
    for i, row in table.iterrows():
        values = {k: (None if v is None or (isinstance(v, float) and v != v) else v)
                  for k, v in row.items()}
        pid = values.get("patient_id") or f"row {i + 2}"
        try:
            patients.append(_patient(values, base / str(values["ct"]), base / str(values["tumor_mask"]),
                                     served, {}, where=f"{Path(table_path).name} row {i + 2}"))
        except ins.Refused as err:
            problems += [ins.FieldProblem(p.field, f"patient {pid}: {p.problem}", p.fix)
                         for p in err.problems]
    if problems:
        raise ins.Refused(problems)
    if not patients:
        raise ins.Refused([ins.FieldProblem("patient_id", "the table has no patient")])
    return patients


def print_one(served, r) -> None:
    from mtnet.app.pipeline import format_risk

    ident = served.describe()
    centers = ", ".join(c["center"] for c in ident["training_centers"])
    synthetic = "synthetic training data" if ident["synthetic"] else "hospital training data"
    sign = ">" if r.risk_group == "high" else "<="
    lines = [
        ("model", f"{ident['model']} (trained on {centers}; {synthetic}; commit {ident['commit']})"),
        ("patient", r.patient_id),
        ("risk", format_risk(r.risk, 4)),
        ("risk group", f"{r.risk_group} (risk {sign} {r.threshold:.4f}, Youden threshold of the "
                       "training centers' out-of-fold risks)"),
        ("H-score", "not provided by this model" if r.h_score is None else
         f"{r.h_score:.4f}" + (f" ({r.h_score_group}: training median {r.h_score_median:.4f})"
                               if r.h_score_group else "")),
        ("95% interval", "not provided by this model" if r.ci_low is None else
         f"{r.ci_low:.4f} to {r.ci_high:.4f}"),
        ("picture", r.picture or "none"),
    ]
    lines += [("warning", w) for w in r.warnings]
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")


NUMERIC = ("risk", "threshold", "h_score", "ci_low", "ci_high")


def print_table(results) -> None:
    cols = ["patient_id", "model", "risk", "risk_group", "threshold", "h_score", "h_score_group",
            "ci_low", "ci_high", "picture"]
    print("\t".join(cols))
    for r in results:
        d = r.as_dict()
        cells = ["NA" if d[c] is None else f"{d[c]:.12g}" if c in NUMERIC else str(d[c]) for c in cols]
        print("\t".join(cells))


def run_serve(args) -> int:
    from mtnet.app.inputs import Refused
    from mtnet.app.pipeline import APPLET_CENTER, check_harmonisable
    from mtnet.app.served import load_model
    from mtnet.app.web import AppSettings, quiet_logging, serve
    from mtnet.errors import InputError

    try:
        served = load_model(args.model, args.liver_model)
        check_harmonisable(served, APPLET_CENTER, 1)
    except Refused as err:
        return _fail(f"{err.problems[0].problem}; the web form scores one patient at a time "
                     "(fix: score patients of one center together with mtnet predict --batch)")
    except InputError as err:
        return _fail(str(err))
    settings = AppSettings(max_upload_bytes=int(args.max_upload_mb * 2**20),
                           max_unzipped_bytes=int(args.max_unzipped_mb * 2**20),
                           queue=args.queue, phase=_phase(args), tumor_segment=args.tumor_segment,
                           tmp_dir=args.tmp_dir, threads=args.threads)
    quiet_logging()  # only now: it sets the process's log levels and warning filters
    serve(served, settings, host=args.host, port=args.port)
    return 0
