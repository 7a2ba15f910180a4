"""The run's provenance manifest (``results/provenance/manifest.json``) and its reading.

What produced the numbers: the sha256 and size of every input file (the config files, each
hospital's files) and of every output under ``results/``; the config (as validated, with
its defaults) and its hash; the code (mtnet version, git commit, dirty flag); Python and R
package versions; the seeds; the hardware; the Snakemake version; each rule's wall time
from its log. :mod:`mtnet.report.audit` checks a tree against it.

Not hashed, and so not checked: ``results/logs/`` (they hold times; their wall times are
recorded instead), the manifest and its summary page, and ``results/report.html`` (written
by ``snakemake --report`` after the run). A JSON output that embeds a wall-clock time
(a top-level ``created``) carries, beside its sha256, a ``content_sha256`` of what it holds
without it, so that two runs compare equal "except for times"; the workflow's own outputs
hold no time (two clean runs, and a killed-and-resumed one, write the same bytes).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

FORMAT_VERSION = 1
RESULTS = "results"
MANIFEST = "results/provenance/manifest.json"
SUMMARY = "results/provenance/summary.html"
REPORT = "results/report.html"
# never hashed: the manifest itself, what is written after it, the logs (times)
NOT_HASHED = {MANIFEST, SUMMARY, REPORT}
NOT_HASHED_DIRS = ("results/logs/",)
NOT_HASHED_NAMES = {".snakemake_timestamp"}
# keys of JSON outputs that hold a wall-clock time
TIME_KEYS = {"created"}
R_PACKAGES = ("pROC", "Hmisc", "rms", "survival")
# sections of the manifest that differ between two runs of the same thing
TIME_SECTIONS = ("created", "rule_times")
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
CHUNK = 1 << 20


# ------------------------------------------------------------------------------ hashing


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def content_sha256(path) -> str | None:
    """The hash of what a file holds without its embedded times, for the files that
    have them (None for the others: their sha256 is their content)."""
    path = Path(path)
    if path.name == "identity.json":
        record = json.loads(path.read_text())
        for key in TIME_KEYS:
            record.pop(key, None)
        return hashlib.sha256(canonical_json(record).encode()).hexdigest()
    return None


def file_record(path) -> dict:
    path = Path(path)
    record = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    content = content_sha256(path)
    if content is not None:
        record["content_sha256"] = content
    return record


def hashed(relpath: str) -> bool:
    """Whether a path under results/ (posix, relative to the run folder) is in the
    manifest."""
    if relpath in NOT_HASHED or relpath.rsplit("/", 1)[-1] in NOT_HASHED_NAMES:
        return False
    return not relpath.startswith(NOT_HASHED_DIRS)


def tree_files(root) -> list[str]:
    """Every file under ``root``/results that the manifest covers, sorted (posix paths
    relative to ``root``)."""
    root = Path(root)
    out = []
    for folder, dirs, files in os.walk(root / RESULTS):
        dirs.sort()
        for name in files:
            rel = (Path(folder) / name).relative_to(root).as_posix()
            if hashed(rel):
                out.append(rel)
    return sorted(out)


def hash_tree(root) -> dict[str, dict]:
    root = Path(root)
    return {rel: file_record(root / rel) for rel in tree_files(root)}


def hash_inputs(paths, root) -> dict[str, dict]:
    """Each input (a file, or every file of a folder) -> its record; keys are the paths as
    configured (a folder's files below it)."""
    root = Path(root)
    out = {}
    for given in paths:
        where = Path(given) if Path(given).is_absolute() else root / given
        if where.is_dir():
            for folder, dirs, files in os.walk(where):
                dirs.sort()
                for name in sorted(files):
                    f = Path(folder) / name
                    out[str(Path(given) / f.relative_to(where))] = file_record(f)
        elif where.is_file():
            out[str(given)] = file_record(where)
        else:
            out[str(given)] = {"missing": True}
    return out


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_sha256(config) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


# ----------------------------------------------------------------------- environment


def python_packages() -> dict[str, str]:
    """Every installed distribution and its version (what ``pip freeze`` lists)."""
    from importlib import metadata

    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[name] = dist.version
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def r_packages(packages=R_PACKAGES) -> dict[str, str | None]:
    """R's version and ``packageVersion`` of each package of the statistics engine (None
    where R or the package is absent)."""
    script = "cat(R.version$major, '.', R.version$minor, '\\n', sep = '');" + "".join(
        f"cat(tryCatch(as.character(packageVersion('{p}')), error = function(e) 'NA'), "
        f"'\\n', sep = '');"
        for p in packages
    )
    try:
        run = subprocess.run(
            ["Rscript", "--vanilla", "-e", script], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"R": None, **{p: None for p in packages}}
    lines = run.stdout.split() if run.returncode == 0 else []
    if len(lines) != len(packages) + 1:
        return {"R": None, **{p: None for p in packages}}
    values = [None if v == "NA" else v for v in lines]
    return dict(zip(("R", *packages), values))


def hardware() -> dict:
    """The machine: CPU model and count, memory, and the GPUs (nvidia-smi) if any."""
    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 1024**2, 1)
                break
    except (OSError, ValueError):
        pass
    gpus = []
    try:
        run = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if run.returncode == 0:
            gpus = [g.strip() for g in run.stdout.splitlines() if g.strip()]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": memory,
        "gpus": gpus,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def rule_times(root) -> dict[str, dict]:
    """Each finished job of the run -> its rule, start, end and wall seconds, from
    Snakemake's job records (``.snakemake/metadata``: start and end time of every output),
    keyed by the job's log (else its first output); without those records, from the first
    and last timestamp of each log under results/logs."""
    jobs = _metadata_times(Path(root) / ".snakemake" / "metadata")
    if not jobs:
        return _log_times(root)
    # a job run by a cluster executor (Slurm) is recorded as starting when it ended: its
    # times come from its log (first to last line: the job's own work, less its imports)
    remote = [key for key, job in jobs.items() if job["seconds"] <= 0]
    if remote:
        logged = _log_times(root, iso=True)
        for key in remote:
            if key in logged:
                jobs[key] = {**logged[key], "rule": jobs[key]["rule"]}
    return jobs


def _metadata_times(folder: Path) -> dict[str, dict]:
    import base64

    jobs: dict[str, dict] = {}
    if not folder.is_dir():
        return jobs
    for entry in sorted(folder.iterdir()):
        try:
            output = base64.urlsafe_b64decode(entry.name).decode()
            meta = json.loads(entry.read_text())
        except (ValueError, OSError):
            continue
        start, end = meta.get("starttime"), meta.get("endtime")
        if not output.startswith(RESULTS + "/") or start is None or end is None:
            continue
        key = (meta.get("log") or [output])[0]
        job = jobs.setdefault(key, {"rule": meta.get("rule"), "start": start, "end": end})
        job["start"], job["end"] = min(job["start"], start), max(job["end"], end)
    out = {}
    for key, job in sorted(jobs.items()):
        out[key] = {
            "rule": job["rule"],
            "start": datetime.fromtimestamp(job["start"], timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "end": datetime.fromtimestamp(job["end"], timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "seconds": round(job["end"] - job["start"], 3),
        }
    return out


def _log_times(root, iso: bool = False) -> dict[str, dict]:
    """``iso``: start and end as the job records write them (UTC ISO 8601; a log's stamps
    are the machine's local time), not as the log does."""
    root = Path(root)
    logs = root / RESULTS / "logs"
    out = {}
    for path in sorted(logs.rglob("*.log")) if logs.exists() else []:
        stamps = []
        with open(path, errors="replace") as fh:
            for line in fh:
                m = _LOG_TIME.match(line)
                if m:
                    stamps.append(m.group(1))
        if not stamps:
            continue
        t0, t1 = (datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in (stamps[0], stamps[-1]))
        start, end = stamps[0], stamps[-1]
        if iso:
            start, end = (t.astimezone(timezone.utc).isoformat(timespec="milliseconds")
                          for t in (t0, t1))
        rel = path.relative_to(root).as_posix()
        out[rel] = {
            "rule": path.relative_to(logs).parts[0],
            "start": start,
            "end": end,
            "seconds": round((t1 - t0).total_seconds(), 3),
        }
    return out


def seeds(config) -> dict:
    """The master seed every random step derives from, and the ROC bands' seeds (one per
    evaluated center and model: ``derive_seed(seed, center, model)``)."""
    from mtnet.config import POOLED, external_centers
    from mtnet.seeds import derive_seed

    seed = int(config["seed"])
    centers = list(external_centers(config)) + list(POOLED)
    return {
        "master": seed,
        "rule": "every random step uses mtnet.seeds.derive_seed(master, *names)",
        "roc_band": {
            f"{c}/{m}": derive_seed(seed, c, m) for c in centers for m in config.get("models", [])
        },
    }


# -------------------------------------------------------------------------- manifest


def build_manifest(root, *, config, configfiles=(), inputs=None, snakemake_version=None) -> dict:
    """The manifest of the run folder ``root`` (the folder holding results/)."""
    from mtnet.provenance import code_identity

    root = Path(root)
    input_paths = list(configfiles) + list((inputs or {}).values())
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code": code_identity(),
        "config": config,
        "config_sha256": config_sha256(config),
        "configfiles": [str(p) for p in configfiles],
        "input_names": {k: str(v) for k, v in (inputs or {}).items()},
        "inputs": hash_inputs(input_paths, root),
        "outputs": hash_tree(root),
        "not_hashed": sorted(NOT_HASHED) + list(NOT_HASHED_DIRS),
        "seeds": seeds(config),
        "software": {
            "python": sys.version.split()[0],
            "snakemake": snakemake_version,
            "r": r_packages(),
            "python_packages": python_packages(),
        },
        "hardware": hardware(),
        "rule_times": rule_times(root),
    }


def write_manifest(
    path, *, summary=None, config, configfiles=(), inputs=None, snakemake_version=None, root=None
) -> dict:
    """Build the manifest of the run folder (default: the folder above ``results/`` that
    holds ``path``) and write it, with its summary page when ``summary`` is given."""
    path = Path(path)
    root = Path(root) if root is not None else _run_folder(path)
    record = build_manifest(
        root,
        config=dict(config),
        configfiles=configfiles,
        inputs=inputs,
        snakemake_version=snakemake_version,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=False, default=str) + "\n")
    if summary is not None:
        from mtnet.report.render import write_page

        write_page(
            summary,
            "Provenance",
            summary_html(record),
            synthetic=any(
                c.get("source") == "synthetic" for c in record["config"].get("centers", {}).values()
            ),
        )
    return record


def _run_folder(path: Path) -> Path:
    path = path.resolve()
    for parent in path.parents:
        if parent.name == RESULTS:
            return parent.parent
    raise ValueError(f"{path} is not under a results/ folder")


def read_manifest(path) -> dict:
    from mtnet.errors import InputError

    path = Path(path)
    if not path.exists():
        raise InputError(
            "no manifest", path=path, fix="run the workflow to its end (rule manifest writes it)"
        )
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(
            f"the manifest is not valid JSON ({err.msg}, line {err.lineno})", path=path
        ) from None
    if record.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"manifest format {record.get('format_version')} (this mtnet reads "
            f"{FORMAT_VERSION})",
            path=path,
        )
    return record


def without_times(record: dict) -> dict:
    """A manifest with what legitimately differs between two runs of the same code and
    config removed: its creation time, the rule times, and the raw hash of files that embed
    a time (their ``content_sha256`` stays)."""
    out = {k: v for k, v in record.items() if k not in TIME_SECTIONS}
    for section in ("outputs", "inputs"):
        out[section] = {
            p: ({k: v for k, v in r.items() if k != "sha256"} if "content_sha256" in r else r)
            for p, r in record.get(section, {}).items()
        }
    return out


# -------------------------------------------------------------------------- summary


def summary_html(record: dict) -> str:
    import html

    def row(k, v):
        return (
            f"<tr><th style='text-align:left;padding:2px 8px'>{html.escape(str(k))}</th>"
            f"<td style='padding:2px 8px'>{html.escape(str(v))}</td></tr>"
        )

    code = record["code"]
    sw = record["software"]
    hw = record["hardware"]
    pk = sw["python_packages"]
    key = [
        "numpy",
        "pandas",
        "scipy",
        "statsmodels",
        "lifelines",
        "scikit-learn",
        "torch",
        "monai",
        "SimpleITK",
        "pyradiomics",
        "matplotlib",
        "rpy2",
        "snakemake",
    ]
    lower = {k.lower(): (k, v) for k, v in pk.items()}
    rows = [
        row("mtnet", code.get("mtnet_version")),
        row("git commit", f"{code.get('commit')}{' (dirty tree)' if code.get('dirty') else ''}"),
        row("config sha256", record["config_sha256"]),
        row("config files", ", ".join(record["configfiles"]) or "—"),
        row("master seed", record["seeds"]["master"]),
        row("outputs hashed", len(record["outputs"])),
        row("inputs hashed", len(record["inputs"])),
        row("Python", sw["python"]),
        row("Snakemake", sw["snakemake"]),
        row("R", sw["r"].get("R")),
        *[row(f"R {p}", v) for p, v in sw["r"].items() if p != "R"],
        *[row(*lower[k.lower()]) for k in key if k.lower() in lower],
        row("CPU", f"{hw['cpu']} ({hw['cpus']} cores, {hw['memory_gb']} GB)"),
        row("GPU", ", ".join(hw["gpus"]) or "none"),
        row("platform", hw["platform"]),
        row("created", record["created"]),
    ]
    by_rule: dict[str, list[float]] = {}
    for t in record["rule_times"].values():
        by_rule.setdefault(t["rule"], []).append(t["seconds"])
    times = "".join(
        f"<tr><td style='padding:2px 8px'>{html.escape(r)}</td>"
        f"<td style='padding:2px 8px;text-align:right'>{len(v)}</td>"
        f"<td style='padding:2px 8px;text-align:right'>{sum(v):.1f}</td>"
        f"<td style='padding:2px 8px;text-align:right'>{max(v):.1f}</td></tr>"
        for r, v in sorted(by_rule.items())
    )
    return (
        "<h3>Provenance of these results</h3>"
        "<p>Check them: <code>mtnet audit results/</code> (re-hashes every file listed in "
        "<code>results/provenance/manifest.json</code>); <code>mtnet audit --rerun "
        "results/</code> reruns the workflow from the recorded config and compares the "
        "metric tables.</p>"
        f"<table style='border-collapse:collapse;font-size:0.9em'>{''.join(rows)}</table>"
        "<h3>Rule wall times (from the logs)</h3>"
        "<table style='border-collapse:collapse;font-size:0.9em'><tr><th>rule</th><th>jobs"
        "</th><th>seconds, total</th><th>seconds, longest</th></tr>"
        f"{times}</table>"
    )
