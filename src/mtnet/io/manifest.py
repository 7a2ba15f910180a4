"""A delivery's manifest: every file it holds, with its SHA-256 (``delivery.sha256``).

Snakemake reruns a job when an input is newer than its outputs, but a directory input does
not change when a file inside it is overwritten. The ingest rule therefore also takes the
manifest of the delivery (``results/ingest/{center}/delivery.sha256``): the workflow's input
function refreshes it while planning, and rewrites it only when the content of the delivery
changed, so its mtime (and Snakemake's checksum of it) moves only on a real change.

Lines are ``<sha256>  <key>/<relative path>`` (the format of ``sha256sum``), sorted, one per
file under each path of the delivery (``images``, ``tumor_masks``, ``clinical``...; a
synthetic center's ``data`` folder), symbolic links followed. Hashing is what costs: a cache
keyed by each file's size, mtime, ctime and inode (``cache``, a JSON file) skips the files
that did not change since the last planning; ctime cannot be set back by ``touch`` or
``cp -p``, so a replaced file is always read again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def _files(key: str, root: Path):
    if root.is_file():
        yield f"{key}/{root.name}", root
        return
    top = str(root)
    for folder, dirs, names in os.walk(top, followlinks=True):
        dirs.sort()
        rel = os.path.relpath(folder, top)
        prefix = key if rel == "." else f"{key}/{rel.replace(os.sep, '/')}"
        for name in sorted(names):
            yield f"{prefix}/{name}", Path(folder, name)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def manifest(paths: dict[str, str | Path], cache: dict | None = None) -> tuple[str, dict]:
    """The manifest text of the delivery ``paths`` ({key: file or folder}) and the updated
    stat cache ({absolute path: [size, mtime_ns, ctime_ns, inode, sha256]})."""
    cache = cache or {}
    fresh: dict[str, list] = {}
    lines = []
    for key in sorted(paths):
        for name, path in _files(key, Path(paths[key])):
            where = os.path.abspath(path)
            st = os.stat(where)
            stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
            known = cache.get(where)
            sha = known[4] if known and known[:4] == stamp else _sha256(path)
            fresh[where] = stamp + [sha]
            lines.append(f"{sha}  {name}")
    return "".join(f"{line}\n" for line in lines), fresh


def refresh(paths: dict[str, str | Path], out: str | Path, cache_path: str | Path | None = None) -> bool:
    """Write the manifest of ``paths`` to ``out`` when it differs from what is there (the file
    keeps its mtime otherwise); True when it was written."""
    out = Path(out)
    cache_path = Path(cache_path) if cache_path else None
    cache = {}
    if cache_path is not None and cache_path.exists():
        try:
            cache = json.loads(cache_path.read_text())
        except ValueError:
            cache = {}
    text, fresh = manifest(paths, cache)
    if cache_path is not None and fresh != cache:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(fresh))
        tmp.replace(cache_path)
    if out.exists() and out.read_text() == text:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return True
