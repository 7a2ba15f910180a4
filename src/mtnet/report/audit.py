"""``mtnet audit``: check a finished run against its provenance manifest.

    mtnet audit results/            # re-hash; OK, or each file missing / changed / extra
    mtnet audit --rerun results/    # also rerun the workflow from the manifest's config
                                    # into a scratch folder and compare the metric tables

Exit 0 when everything matches, 1 on any difference, 2 when there is nothing to audit
(no manifest, or the folder is not a run's results/).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

METRIC_TABLES = "results/stats/"


@dataclass(frozen=True)
class Difference:
    """One way the tree differs from the manifest."""

    kind: str  # missing | changed | extra | config | rerun
    path: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")


def _short(sha: str) -> str:
    return sha[:12]


def _compare(recorded: dict, now: dict, *, where: str) -> list[Difference]:
    out = []
    for path, rec in recorded.items():
        cur = now.get(path)
        if cur is None or cur.get("missing"):
            if not rec.get("missing"):
                out.append(Difference("missing", path, f"{where} recorded, not found now"))
            continue
        if rec.get("missing"):
            out.append(Difference("changed", path, f"{where} recorded as missing, now present"))
        elif cur["sha256"] != rec["sha256"]:
            size = (
                f"{rec['bytes']} -> {cur['bytes']} bytes"
                if cur["bytes"] != rec["bytes"]
                else f"same size, {rec['bytes']} bytes"
            )
            out.append(
                Difference(
                    "changed",
                    path,
                    f"sha256 {_short(rec['sha256'])}… recorded, {_short(cur['sha256'])}… now; "
                    f"{size}",
                )
            )
    return out


def audit(results, *, manifest=None) -> tuple[dict, list[Difference]]:
    """Re-hash the run whose ``results/`` folder is ``results`` and compare with its
    manifest: every recorded output and input (missing or changed), files under results/
    the manifest does not know (extra), and the recorded config against its hash."""
    from mtnet.errors import InputError
    from mtnet.report import manifest as mf

    results = Path(results)
    if results.name != mf.RESULTS or not results.is_dir():
        raise InputError(
            "not a results/ folder of a run", path=results, fix="give the run's results/"
        )
    root = results.parent
    record = mf.read_manifest(manifest or root / mf.MANIFEST)
    diffs = []
    if mf.config_sha256(record["config"]) != record["config_sha256"]:
        diffs.append(
            Difference(
                "config",
                mf.MANIFEST,
                "the recorded config no longer matches its recorded sha256",
            )
        )
    now = mf.hash_tree(root)
    diffs += _compare(record["outputs"], now, where="output")
    diffs += [
        Difference("extra", path, "under results/, not in the manifest")
        for path in sorted(set(now) - set(record["outputs"]))
    ]
    recorded_inputs = record["inputs"]
    paths = list(record["configfiles"]) + list(record["input_names"].values())
    now_inputs = mf.hash_inputs(paths, root)
    diffs += _compare(recorded_inputs, now_inputs, where="input")
    diffs += [
        Difference("extra", path, "input file not in the manifest")
        for path in sorted(set(now_inputs) - set(recorded_inputs))
    ]
    return record, diffs


# ----------------------------------------------------------------------------- rerun


def checkout_snakefile() -> Path:
    """The Snakefile of the checkout this mtnet is imported from."""
    from mtnet.errors import InputError

    snakefile = Path(__file__).resolve().parents[3] / "Snakefile"
    if not snakefile.exists():
        raise InputError(
            "--rerun needs the workflow's checkout (this mtnet is installed without it)",
            path=snakefile,
            fix="run mtnet audit from a checkout of the repository",
        )
    return snakefile


def rerun_config(record: dict, root: Path) -> dict:
    """The manifest's config with each hospital's relative paths made absolute against
    the audited run's folder (the rerun happens elsewhere)."""
    import copy

    config = copy.deepcopy(record["config"])
    keys = ("images", "tumor_masks", "liver_masks", "clinical", "clinical_mapping")
    for entry in config.get("centers", {}).values():
        for key in keys:
            if key in entry and not Path(entry[key]).is_absolute():
                entry[key] = str((root / entry[key]).resolve())
        phase = entry.get("phase", {})
        if "overrides" in phase and not Path(phase["overrides"]).is_absolute():
            phase["overrides"] = str((root / phase["overrides"]).resolve())
    return config


def rerun_config_files(record: dict, root: Path) -> list[Path] | None:
    """The run's own config files (absolute), when they are all unchanged (their sha256 as
    recorded) and name no relative hospital path: then the rerun's manifest compares with
    the run's field by field. None otherwise (the recorded config is written instead)."""
    from mtnet.report import manifest as mf

    if rerun_config(record, root) != record["config"]:
        return None
    paths = []
    for given in record["configfiles"]:
        path = Path(given) if Path(given).is_absolute() else root / given
        rec = record["inputs"].get(given, {})
        if not path.is_file() or rec.get("sha256") != mf.sha256_file(path):
            return None
        paths.append(path.resolve())
    return paths or None


def rerun(
    record: dict, root: Path, scratch: Path, *, cores: int = 2, log=print
) -> list[Difference]:
    """Run the workflow from the manifest's config into ``scratch`` (the run's config files
    when they are unchanged, else the recorded config written out) and compare every metric
    table (results/stats/) byte for byte with the manifest."""
    import os
    import subprocess

    import yaml

    from mtnet import provenance
    from mtnet.report import manifest as mf

    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    config_files = rerun_config_files(record, root)
    if config_files is None:
        config_files = [scratch / "audit_config.yaml"]
        config_files[0].write_text(yaml.safe_dump(rerun_config(record, root), sort_keys=False))
    snakefile = checkout_snakefile()
    code = provenance.git_state(snakefile.parent)
    if code.get("commit") != record["code"].get("commit") or code.get("dirty"):
        log(
            f"note: rerunning with commit {code.get('commit')}"
            f"{' (dirty)' if code.get('dirty') else ''}; the run was "
            f"{record['code'].get('commit')}{' (dirty)' if record['code'].get('dirty') else ''}"
        )
    env = dict(os.environ)
    src = str(snakefile.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(snakefile),
        "-d",
        str(scratch),
        "--configfile",
        *map(str, config_files),
        "--replace-workflow-config",
        "--cores",
        str(cores),
        "--rerun-incomplete",
    ]
    log(f"rerunning into {scratch}: {' '.join(cmd[2:])}")
    run = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
    (scratch / "audit_rerun.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or [""]
        return [
            Difference(
                "rerun",
                str(scratch),
                f"the workflow failed (exit {run.returncode}: {tail[0]}); log: "
                f"{scratch / 'audit_rerun.log'}",
            )
        ]
    diffs = []
    again = scratch / mf.MANIFEST
    if again.exists() and mf.read_manifest(again)["config_sha256"] != record["config_sha256"]:
        diffs.append(Difference("rerun", mf.MANIFEST, "the rerun's config differs from the run's"))
    metrics = {p: r for p, r in record["outputs"].items() if p.startswith(METRIC_TABLES)}
    for path, rec in sorted(metrics.items()):
        again = scratch / path
        if not again.exists():
            diffs.append(Difference("rerun", path, "the rerun did not write it"))
        elif mf.sha256_file(again) != rec["sha256"]:
            diffs.append(Difference("rerun", path, "the rerun wrote other bytes"))
    made = {p.relative_to(scratch).as_posix() for p in (scratch / METRIC_TABLES).rglob("*.tsv")}
    diffs += [
        Difference("rerun", p, "written by the rerun, not in the manifest")
        for p in sorted(made - set(metrics))
    ]
    log(f"rerun: {len(metrics)} metric tables compared")
    return diffs


# ------------------------------------------------------------------------------- CLI


def register(subparsers) -> None:
    import argparse

    p = subparsers.add_parser(
        "audit",
        help="check a finished run against its provenance manifest",
        description="Re-hash every file of a run's results/ and compare with "
        "results/provenance/manifest.json (written by the workflow's last rule): prints OK, "
        "or each file that is missing, changed or extra, and exits 1 on any difference. "
        "With --rerun, also reruns the workflow from the manifest's config into a scratch "
        "folder and compares the metric tables (results/stats/) byte for byte.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "results",
        type=Path,
        nargs="?",
        default=Path("results"),
        help="the run's results/ folder (default: ./results)",
    )
    p.add_argument(
        "--rerun",
        action="store_true",
        help="rerun the workflow from the manifest's config and compare the metric " "tables",
    )
    p.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="folder of the rerun (default: a new temporary folder, kept)",
    )
    p.add_argument("--cores", type=int, default=2, help="cores of the rerun (default 2)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import tempfile

    from mtnet.errors import InputError

    try:
        record, diffs = audit(args.results)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for d in diffs:
        print(d)
    n_out, n_in = len(record["outputs"]), len(record["inputs"])
    code = record["code"]
    if args.rerun:
        scratch = args.scratch or Path(tempfile.mkdtemp(prefix="mtnet-audit-"))
        try:
            more = rerun(record, args.results.resolve().parent, scratch, cores=args.cores)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        for d in more:
            print(d)
        diffs += more
    if diffs:
        kinds = {}
        for d in diffs:
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
        print(f"DIFFERENT: {summary} (manifest of commit {code.get('commit')})")
        return 1
    print(
        f"OK: {n_out} outputs and {n_in} inputs match the manifest (commit "
        f"{code.get('commit')}{', dirty' if code.get('dirty') else ''}; config sha256 "
        f"{record['config_sha256'][:12]}…)"
        + ("; the rerun's metric tables are identical" if args.rerun else "")
    )
    return 0
