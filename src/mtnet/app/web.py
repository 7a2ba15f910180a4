"""``mtnet serve``: the applet as a server-rendered web form (FastAPI, Jinja2, uvicorn).

No JavaScript: a form with the factors the model uses (their allowed values), uploads of
the CT (a zip of DICOM files, or a NIfTI) and the tumor mask (DICOM-SEG or NIfTI), and a
result page with the risk, its group, the picture and the model's identity.

- The request body is read here, not by a framework's spooler: it is counted against the
  upload limit as it arrives and every upload is written into a per-request temporary
  folder under names of our own (``ct.upload``, ``tumor_mask.upload``); the folder is
  removed when the request is done, whatever happened. Uploads are judged by content.
- Requests are scored one at a time (one worker thread); ``queue`` more may wait; beyond
  that the answer is a "busy" page (HTTP 503, Retry-After) and the body is drained so the
  client reads it.
- Nothing is stored: results exist only in the answer (the picture inline, ``Cache-Control:
  no-store``); the log says how long a request took and which fields were refused, never a
  value, a result or anything read from an uploaded header; unexpected errors are logged by
  their type only.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from mtnet.app import inputs as ins
from mtnet.app.pipeline import APPLET_CENTER, DEFAULT_MAX_UNZIPPED, Patient, format_risk, score
from mtnet.factors import CANONICAL

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
MAX_FIELD_BYTES = 4096
FILE_FIELDS = (ins.CT, ins.TUMOR_MASK)
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # no script at all; the picture is inline
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}


@dataclass
class AppSettings:
    max_upload_bytes: int = 2**30
    max_unzipped_bytes: int = DEFAULT_MAX_UNZIPPED
    queue: int = 4
    phase: dict | None = None
    tumor_segment: int = 1
    tmp_dir: Path | None = None
    threads: int = 1


class TooLarge(Exception):
    pass


class BadForm(Exception):
    pass


class ScoringQueue:
    """One request scored at a time per model; at most ``waiting`` more wait for it."""

    def __init__(self, waiting: int):
        self.capacity = 1 + max(0, int(waiting))
        self._taken = 0
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtnet-score")

    def enter(self) -> bool:
        with self._lock:
            if self._taken >= self.capacity:
                return False
            self._taken += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._taken -= 1

    @property
    def taken(self) -> int:
        return self._taken


# ------------------------------------------------------------------ the request body


class UploadForm:
    """python-multipart callbacks that keep text fields (at most :data:`MAX_FIELD_BYTES`
    each) and write the file fields into ``folder`` under their field's name."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.fields: dict[str, str] = {}
        self.files: dict[str, Path] = {}
        self._name = None
        self._header = b""
        self._headers: dict[bytes, bytes] = {}
        self._value = b""
        self._handle = None
        self._text = bytearray()
        self._current_is_file = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done, "on_part_data": self._data,
                "on_part_end": self._end}

    def _begin(self):
        self._headers, self._header, self._value = {}, b"", b""
        self._name, self._handle, self._text, self._current_is_file = None, None, bytearray(), False

    def _header_field(self, data, start, end):
        self._header += data[start:end]

    def _header_value(self, data, start, end):
        self._value += data[start:end]

    def _header_end(self):
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def _headers_done(self):
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._name = name
        self._current_is_file = b"filename" in options
        if self._current_is_file:
            if name not in FILE_FIELDS:
                raise BadForm(f"unexpected file field {name[:40]!r}")
            if name in self.files:
                raise BadForm(f"two files for {name}")
            path = self.folder / f"{name}.upload"
            self.files[name] = path
            self._handle = path.open("wb")

    def _data(self, data, start, end):
        if self._handle is not None:
            self._handle.write(data[start:end])
        elif self._current_is_file:
            return
        else:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD_BYTES:
                raise BadForm(f"field {self._name[:40]!r} is longer than {MAX_FIELD_BYTES} bytes")

    def _end(self):
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        elif not self._current_is_file and self._name:
            self.fields[self._name] = self._text.decode("utf-8", "replace").strip()

    def close(self):
        if self._handle is not None:
            self._handle.close()


async def read_form(request, folder: Path, limit: int) -> UploadForm:
    """The multipart body, counted against ``limit`` as it arrives."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in options:
        raise BadForm("not a multipart form upload")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge()
    form = UploadForm(folder)
    parser = MultipartParser(options[b"boundary"], form.callbacks())
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise TooLarge()
            parser.write(chunk)
        parser.finalize()
    except (TooLarge, BadForm):
        raise
    except Exception as err:  # a malformed body: python-multipart's parse errors
        raise BadForm(f"malformed form data ({type(err).__name__})") from None
    finally:
        form.close()
    return form


async def drain(request, limit: int) -> None:
    """Read and drop the body (up to ``limit``) so that a refused client reads the answer."""
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                return
    except Exception:  # the client went away
        return


# ------------------------------------------------------------------ the form


def form_factors(served) -> list[dict]:
    """The factors of the form, in the canonical order, with their allowed values."""
    out = []
    for column in served.factors:
        f = CANONICAL[column]
        codes = [(c, f"{c} ({'yes' if c == '1' else 'no'})" if f.codes == ("0", "1") else c)
                 for c in f.codes]
        item = {"name": column, "label": ins.factor_label(column), "allowed": ins.allowed(column),
                "kind": "select" if f.kind == "code" else "number", "codes": codes,
                "step": "1" if f.kind == "int" else "any", "min": None, "max": None}
        if f.limits:
            item["min"], item["max"] = f.limits
        out.append(item)
    return out


def check_form(served, form: UploadForm) -> tuple[dict, list]:
    """The factors given and the problems of the form, per field."""
    values = {c: form.fields.get(c) or None for c in served.factors}
    problems = ins.check_factors(values, served.factors)
    for name, check in ((ins.CT, ins.check_ct), (ins.TUMOR_MASK, ins.check_mask)):
        path = form.files.get(name)
        if path is None or not path.exists() or path.stat().st_size == 0:
            what = "the CT" if name == ins.CT else "the tumor mask"
            problems.append(ins.FieldProblem(name, "missing", f"choose {what} to upload"))
        else:
            problems += check(path)[1]
    return values, problems


def _kinds(form: UploadForm) -> dict:
    return {ins.CT: ins.check_ct(form.files[ins.CT])[0],
            ins.TUMOR_MASK: ins.check_mask(form.files[ins.TUMOR_MASK])[0]}


# ------------------------------------------------------------------ the application


def create_app(served, settings: AppSettings | None = None):
    """The FastAPI application serving ``served`` (a :class:`mtnet.app.served.ServedModel`)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    settings = settings or AppSettings()
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape())
    env.filters["risk"] = format_risk
    queue = ScoringQueue(settings.queue)
    identity = served.describe()
    factors = form_factors(served)
    counter = {"n": 0}
    app = FastAPI(title="MTnet-MVI applet", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.queue = queue

    def page(name: str, status: int = 200, extra_headers=None, **context) -> HTMLResponse:
        html = env.get_template(name).render(identity=identity, factors=factors,
                                             limit_mb=settings.max_upload_bytes / 2**20, **context)
        return HTMLResponse(html, status_code=status, headers={**HEADERS, **(extra_headers or {})})

    def form_page(values=None, problems=(), status=200):
        errors = {}
        for p in problems:
            errors.setdefault(p.field if p.field in {f["name"] for f in factors} | set(FILE_FIELDS)
                              else "form", []).append(p)
        return page("form.html", status, values=values or {}, errors=errors)

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return form_page()

    @app.get("/predict")
    async def predict_get():
        return RedirectResponse("/", status_code=303)

    @app.get("/health")
    async def health():
        return JSONResponse({"status": "ok", "model": served.name, "taken": queue.taken,
                             "capacity": queue.capacity}, headers=HEADERS)

    @app.post("/predict", response_class=HTMLResponse)
    async def predict(request: Request):
        counter["n"] += 1
        n = counter["n"]
        start = time.perf_counter()
        if not queue.enter():
            await drain(request, settings.max_upload_bytes)
            log.info("request %d: busy (%d taken)", n, queue.taken)
            return page("message.html", 503, {"Retry-After": "30"}, title="Busy",
                        message=f"The applet is busy: it scores one patient at a time and "
                        f"{queue.capacity - 1} more are waiting. Nothing was stored. Please try "
                        "again in a minute.")
        folder = Path(tempfile.mkdtemp(prefix="mtnet-applet-", dir=settings.tmp_dir))
        handed_over = False
        try:
            try:
                form = await read_form(request, folder, settings.max_upload_bytes)
            except TooLarge:
                await drain(request, settings.max_upload_bytes)
                log.info("request %d: refused: larger than the upload limit", n)
                return page("message.html", 413, title="Too large",
                            message=f"The upload is larger than the limit of "
                            f"{settings.max_upload_bytes / 2**20:.0f} MiB. Upload the portal-phase "
                            "series only (a zip of its DICOM files, or a NIfTI).")
            except BadForm as err:
                log.info("request %d: refused: bad form", n)
                return page("message.html", 400, title="Bad request", message=str(err))
            values, problems = check_form(served, form)
            if problems:
                log.info("request %d: refused: %s", n, ", ".join(sorted({p.field for p in problems})))
                return form_page(values, problems, 422)
            kinds = _kinds(form)
            patient = Patient(ins.DEFAULT_PATIENT, values, form.files[ins.CT], kinds[ins.CT],
                              form.files[ins.TUMOR_MASK], kinds[ins.TUMOR_MASK])
            future = queue.executor.submit(_job, served, patient, folder, settings)
            future.add_done_callback(lambda _: queue.leave())
            handed_over = True
            outcome = await asyncio.wrap_future(future)
        finally:
            if not handed_over:
                shutil.rmtree(folder, ignore_errors=True)
                queue.leave()
        seconds = time.perf_counter() - start
        if isinstance(outcome, ins.Refused):
            log.info("request %d: refused after %.1f s: %s", n, seconds,
                     ", ".join(sorted({p.field for p in outcome.problems})))
            return form_page(values, outcome.problems, 422)
        if isinstance(outcome, Exception):
            log.error("request %d: failed after %.1f s (%s)", n, seconds, type(outcome).__name__)
            return page("message.html", 500, title="Error",
                        message="The patient could not be scored because of an internal error. "
                        "Nothing was stored. Running `mtnet predict` on the same files names the "
                        "problem.")
        result, picture = outcome
        log.info("request %d: scored in %.1f s", n, seconds)
        return page("result.html", result=result, picture=picture, seconds=seconds)

    return app


def _job(served, patient: Patient, folder: Path, settings: AppSettings):
    """Score in the worker thread; the request's folder is removed here, when the work is
    done (also if the client has gone). Returns (result, PNG base64), a Refused or another
    exception."""
    try:
        work = folder / "work"
        results = score(served, [patient], work, center=APPLET_CENTER, phase=settings.phase,
                        tumor_segment=settings.tumor_segment,
                        max_unzipped=settings.max_unzipped_bytes, pictures=folder / "pictures",
                        threads=settings.threads)
        result = results[0]
        picture = base64.b64encode(Path(result.picture).read_bytes()).decode("ascii")
        result.picture = None
        return result, picture
    except ins.Refused as err:
        return err
    except Exception as err:  # logged by type only: a message may quote an upload
        return err
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def quiet_logging() -> None:
    """The server's log: requests and the applet's own lines; the stages' per-patient lines
    and the DICOM libraries' warnings (which may quote header values) are left out."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mtnet").setLevel(logging.ERROR)
    logging.getLogger(__name__).setLevel(logging.INFO)
    for name in ("pydicom", "highdicom", "radiomics", "matplotlib", "PIL"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module=r"(pydicom|highdicom|radiomics)(\..*)?$")


def serve(served, settings: AppSettings, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Run the application under uvicorn (call :func:`quiet_logging` first)."""
    import uvicorn

    app = create_app(served, settings)
    log.info("serving %s on http://%s:%d (one request at a time, %d may wait)", served.name, host,
             port, settings.queue)
    uvicorn.run(app, host=host, port=port, log_level="info", workers=1)
