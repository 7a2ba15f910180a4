"""Clinical tables → the canonical columns (:mod:`mtnet.factors`), through a per-center mapping.

A mapping file (YAML) translates a hospital's own table::

    id_column: TCIA_ID                    # source column holding the patient ID
    columns:                              # canonical column: how to get it
      age: {from: age}
      sex: {from: Sex, values: {1: M, 2: F}}            # value map (unknown codes are errors)
      os_days: {from: OS, unit: weeks}                  # unit conversion to days / mm
      treatment: {constant: TACE, reason: "..."}        # a fact of the whole collection
    missing:                              # canonical columns the source lacks: the reason
      mvi: "the table records vascular invasion at baseline only"
    extra:                                # kept after `center`, same syntax as `columns`
      baseline_vascular_invasion: {from: Vascular invasion}

A canonical column that the mapping does not name is taken from the table's column of the
same name where there is one (a mapping lists only what it renames or converts); the
mapping's ``missing:`` says otherwise. Canonical columns that are neither mapped nor
present are NA and listed in missing_columns.tsv with a reason and a ``status``:
``declared`` (the mapping's ``missing:``), ``not_mapped`` (the table has an unused column
that looks like it, e.g. ``Age``), ``not_in_table``; they are never invented. Derived
columns (always appended after ``center``): ``afp_group`` (<25, 25-400, >400 ng/mL, paper
Table 1) and ``lesion_number_group`` (1, 2, 3, >3).

Units have kinds (:data:`UNITS`): a column converts only from a unit of its own kind
(:data:`COLUMN_KINDS`: times to days, lengths to mm, concentrations to ng/mL, age to years);
another unit is an error naming the mapping file and line.

Validation collects one message per problem naming center, patient and column: codes, types
and ranges of every field, the consistency of the fields of a row (:func:`check_rows`) and
the plausibility of a column as a whole (:data:`PLAUSIBLE_MEDIAN`: a median age of 5 years is
a unit problem); all are logged and a single :class:`InputError` summarises the first with
the count. A CSV read with the wrong separator or in another encoding than UTF-8 is an
error that says so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mtnet.config import read_yaml
from mtnet.errors import InputError
from mtnet.factors import CANONICAL, CANONICAL_COLUMNS, DERIVED, EVENTS, afp_group, as_code, lesion_group

log = logging.getLogger(__name__)

# kind -> unit -> factor to the kind's canonical unit
UNITS = {
    "time": {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25},
    "length": {"mm": 1.0, "cm": 10.0},
    # AFP: 1 IU/mL = 1.21 ng/mL (WHO International Standard 72/225)
    "concentration": {"ng/mL": 1.0, "ug/L": 1.0, "IU/mL": 1.21, "kIU/L": 1.21},
    "age": {"years": 1.0, "months": 1 / 12, "days": 1 / 365.25},
}
CANONICAL_UNIT = {"time": "days", "length": "mm", "concentration": "ng/mL", "age": "years"}
# canonical column -> the kind of its unit (columns not listed take no unit)
COLUMN_KINDS = {"age": "age", "max_diameter_mm": "length", "afp_ng_ml": "concentration",
                "time_to_mvi_days": "time", "os_days": "time"}
# an extra column's name says what it is converted to
SUFFIX_KINDS = {"_days": "time", "_mm": "length", "_ng_ml": "concentration", "_years": "age"}
# (low, high) of a column's median: outside, the unit (or the column) is wrong
PLAUSIBLE_MEDIAN = {"age": (18.0, 100.0), "max_diameter_mm": (5.0, 250.0)}


@dataclass
class ClinicalTable:
    table: pd.DataFrame  # canonical columns, `center`, extras, derived (patient_id as str)
    missing: pd.DataFrame  # column, reason, status
    extras: list[str]


MISSING_COLUMNS = ["column", "reason", "status"]
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def read_table(path: Path, sheet: str | None = None, id_column: str = "patient_id",
               center: str | None = None) -> pd.DataFrame:
    """CSV/TSV or XLSX (first sheet unless named); the ID column as text (keeps '007').

    Text files are read as UTF-8 (a byte-order mark is allowed); another encoding, or a
    separator other than the extension's (``,`` for .csv, tab for .tsv), is an error that
    says which.
    """
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype={id_column: str})
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    raw = path.read_bytes()
    text = _decode(raw, path, center)
    header = text.splitlines()[0] if text.strip() else ""
    if sep not in header:
        counts = {s: header.count(s) for s in SEPARATORS if s != sep}
        other = max(counts, key=counts.get) if counts else None
        if other is not None and counts[other] > 0:
            raise InputError(
                f"the table reads as one column: its header is {SEPARATORS[other]}-separated, not "
                f"{SEPARATORS[sep]}-separated as {path.suffix} says", center=center, path=path,
                fix=f"export it {SEPARATORS[sep]}-separated (or as .xlsx)")
    import io

    return pd.read_csv(io.StringIO(text), sep=sep, dtype={id_column: str})


def _decode(raw: bytes, path: Path, center) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError("the table is UTF-16 encoded (Excel's 'Unicode text')", center=center,
                         path=path, fix="save it as CSV UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        try:
            raw.decode("cp1252")
            guess = "it looks Latin-1 / Windows-1252 encoded"
        except UnicodeDecodeError:
            guess = "unknown encoding"
        raise InputError(
            f"the table is not UTF-8: byte 0x{raw[err.start]:02x} on line {line} ({guess})",
            center=center, path=path, fix="save it as CSV UTF-8") from None


_norm = as_code


class _Problems(list):
    def add(self, problem, *, center, patient=None, column=None, fix=None, path=None):
        self.append(InputError(problem, center=center, patient=patient, column=column, fix=fix,
                               path=path))


def _unit_kind(unit: str) -> str | None:
    for kind, units in UNITS.items():
        if kind != "age" and _unit_key(unit, units):
            return kind
    return "age" if _unit_key(unit, UNITS["age"]) else None


def _unit_key(unit: str, units: dict) -> str | None:
    low = str(unit).strip().lower().replace("µ", "u")
    return next((u for u in units if u.lower() == low), None)


def column_kind(section: str, name: str) -> str | None:
    """The unit kind of a mapped column: canonical columns by :data:`COLUMN_KINDS`, extra
    columns by their name's suffix (``ttp_days``: a time in days); None: takes no unit."""
    if section == "columns":
        return COLUMN_KINDS.get(name)
    return next((k for suffix, k in SUFFIX_KINDS.items() if name.endswith(suffix)), None)


def _map_column(src: pd.DataFrame, spec: dict, name: str, ids: pd.Series, center, path, problems,
                kind: str | None = None):
    """One output column from its mapping spec (from / values / unit / constant)."""
    if "constant" in spec:
        return pd.Series([spec["constant"]] * len(src), index=src.index, dtype=object)
    col = spec["from"]
    values = src[col]
    if "values" in spec:
        vmap = {_norm(k): v for k, v in spec["values"].items()}
        out = []
        for pid, v in zip(ids, values):
            key = _norm(v)
            if key is None:
                out.append(None)
            elif key in vmap:
                out.append(vmap[key])
            else:
                problems.add(f"unknown code {key!r} in source column '{col}' (mapped: "
                             f"{', '.join(map(str, vmap))})", center=center, patient=pid, column=name,
                             fix=f"add it to the value map in {path}")
                out.append(None)
        values = pd.Series(out, index=src.index, dtype=object)
    if "unit" in spec:
        kind = kind or _unit_kind(spec["unit"])
        factor = UNITS[kind][_unit_key(spec["unit"], UNITS[kind])]
        num = pd.to_numeric(values, errors="coerce")
        for pid, v, n in zip(ids, values, num):
            if _norm(v) is not None and pd.isna(n):
                problems.add(f"not a number: {v!r}{_decimal_hint(v)}", center=center, patient=pid,
                             column=name)
        values = num * factor
    return values


def _decimal_hint(value) -> str:
    text = str(value).strip()
    if "," in text and text.replace(",", "", 1).replace("-", "", 1).isdigit():
        return " (a decimal comma? write 61.5, not 61,5)"
    return ""


MAPPING_KEYS = {"id_column", "columns", "missing", "extra"}
SPEC_KEYS = {"from", "values", "unit", "constant", "reason"}


def mapping_lines(path) -> dict[tuple, int]:
    """(section, column[, key]) -> line number (1-based) of a mapping file's entries."""
    import yaml

    if path is None or not Path(path).exists():
        return {}
    try:
        root = yaml.compose(Path(path).read_text())
    except yaml.YAMLError:
        return {}
    lines: dict[tuple, int] = {}

    def walk(node, keys):
        if isinstance(node, yaml.MappingNode):
            for key_node, value in node.value:
                here = keys + (key_node.value,)
                lines[here] = key_node.start_mark.line + 1
                if len(here) < 3:
                    walk(value, here)

    walk(root, ())
    return lines


def _where(path, lines: dict, *keys) -> str | None:
    if path is None:
        return None
    line = lines.get(tuple(keys)) or lines.get(tuple(keys[:2]))
    return f"{path}:{line}" if line else str(path)


def _check_mapping(mapping: dict, path, center=None) -> None:
    """Refuse typos, unknown units and units of the wrong kind in a mapping file, naming the
    key and its line."""
    if not isinstance(mapping, dict):
        raise InputError("a clinical mapping must be a mapping of keys", path=path, center=center)
    lines = mapping_lines(path)
    unknown = set(mapping) - MAPPING_KEYS
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                         f"(allowed: {', '.join(sorted(MAPPING_KEYS))})", path=path, center=center)
    for section in ("columns", "extra"):
        for name, spec in (mapping.get(section) or {}).items():
            if isinstance(spec, dict) and set(spec) - SPEC_KEYS:
                raise InputError(f"{section}.{name}: unknown key(s) "
                                 f"{', '.join(sorted(map(str, set(spec) - SPEC_KEYS)))} "
                                 f"(allowed: {', '.join(sorted(SPEC_KEYS))})",
                                 path=_where(path, lines, section, name), center=center)
    for section in ("columns", "extra"):
        for name, spec in (mapping.get(section) or {}).items():
            at = _where(path, lines, section, name)
            if section == "columns" and name not in CANONICAL:
                raise InputError(f"'{name}' is not a canonical column", path=at, center=center,
                                 fix=f"use one of {', '.join(CANONICAL_COLUMNS)} or list it under extra:")
            if not isinstance(spec, dict) or not ({"from", "constant"} & set(spec)):
                raise InputError(f"column '{name}' needs `from:` or `constant:`", path=at, center=center)
            if "unit" in spec:
                _check_unit(section, name, spec["unit"], _where(path, lines, section, name, "unit"),
                            center)
    for name in mapping.get("missing") or {}:
        if name not in CANONICAL:
            raise InputError(f"missing: '{name}' is not a canonical column",
                             path=_where(path, lines, "missing", name), center=center)


def _check_unit(section: str, name: str, unit, at, center) -> None:
    kind = column_kind(section, name)
    unit_kind = _unit_kind(unit)
    if unit_kind is None:
        known = "; ".join(f"{k}: {', '.join(u)}" for k, u in UNITS.items())
        raise InputError(f"column '{name}': unknown unit {unit!r} (known: {known})", path=at,
                         center=center)
    if kind is None and section == "columns":
        raise InputError(f"column '{name}' takes no unit (it is not a time, length, "
                         f"concentration or age), got {unit!r}", path=at, center=center,
                         fix="remove the unit, or map the column it belongs to")
    if kind is not None and _unit_key(unit, UNITS[kind]) is None:
        raise InputError(
            f"column '{name}': unit {unit!r} is a {unit_kind} unit, but {name} is {_a(kind)} "
            f"({CANONICAL_UNIT[kind]})", path=at, center=center,
            fix=f"use one of {', '.join(UNITS[kind])}")


def _a(kind: str) -> str:
    return {"age": "an age", "time": "a time", "length": "a length",
            "concentration": "a concentration"}[kind]


def _looks_like(name: str, columns) -> str | None:
    """An unused source column whose name looks like a canonical one ('Age', 'OS days')."""
    import re

    def key(text):
        return re.sub(r"[^a-z0-9]", "", str(text).lower())

    stem = re.sub(r"_(mm|days|ng_ml)$", "", name)
    wanted = {key(name), key(stem)}
    return next((c for c in columns if key(c) in wanted), None)


def map_table(src: pd.DataFrame, mapping: dict | None, center: str, *, table_path=None,
              mapping_path=None) -> tuple[pd.DataFrame, pd.DataFrame, list[str], _Problems]:
    """Translate ``src`` to canonical columns; returns (table, missing, extras, problems)."""
    problems = _Problems()
    src = src.copy()
    src.columns = [str(c).strip() for c in src.columns]
    mapping = {"id_column": "patient_id", "columns": {}} if mapping is None else mapping
    _check_mapping(mapping, mapping_path, center)
    lines = mapping_lines(mapping_path)
    id_col = mapping.get("id_column", "patient_id")
    columns = dict(mapping.get("columns") or {})
    reasons = mapping.get("missing") or {}
    # canonical columns the mapping leaves alone are read under their own names
    by_name = [c for c in CANONICAL_COLUMNS[1:]
               if c not in columns and c not in reasons and c in src.columns]
    for name in by_name:
        columns[name] = {"from": name}
    if by_name and mapping_path is not None:
        log.info("center %s: %d canonical column(s) read under their own names: %s", center,
                 len(by_name), ", ".join(by_name))
    specs = list(columns.values()) + list((mapping.get("extra") or {}).values())
    needed = [id_col] + [spec["from"] for spec in specs if "from" in spec]
    absent = [c for c in dict.fromkeys(needed) if c not in src.columns]
    if absent:
        table_name = Path(table_path).name if table_path else "the table"
        for c in absent:
            problems.add(f"missing required column '{c}' in {table_name}", center=center, column=c,
                         fix=f"check the table or the mapping {mapping_path or ''}".strip())
        return pd.DataFrame(), pd.DataFrame(columns=MISSING_COLUMNS), [], problems

    ids = src[id_col].map(_norm)
    out = pd.DataFrame(index=src.index)
    out["patient_id"] = ids
    used = set(needed)
    missing_rows = []
    for name in CANONICAL_COLUMNS[1:]:
        if name in columns:
            out[name] = _map_column(src, columns[name], name, ids, center,
                                    _where(mapping_path, lines, "columns", name), problems,
                                    kind=COLUMN_KINDS.get(name))
            continue
        out[name] = None
        if name in reasons:
            missing_rows.append((name, reasons[name], "declared"))
            continue
        similar = _looks_like(name, [c for c in src.columns if c not in used])
        if similar is not None:
            missing_rows.append((name, f"not mapped: the table has an unused column '{similar}' "
                                       f"(map it: {name}: {{from: {similar}}})", "not_mapped"))
        else:
            missing_rows.append((name, "not in the source table", "not_in_table"))
    out["center"] = center
    extras = list((mapping.get("extra") or {}))
    for name in extras:
        out[name] = _map_column(src, mapping["extra"][name], name, ids, center,
                                _where(mapping_path, lines, "extra", name), problems,
                                kind=column_kind("extra", name))
    missing = pd.DataFrame(missing_rows, columns=MISSING_COLUMNS)
    return out, missing, extras, problems


def validate(table: pd.DataFrame, center: str, problems: _Problems | None = None,
             units: dict | None = None) -> _Problems:
    """Type, code and range checks of every field; duplicated IDs; event times; the
    consistency of a row's fields (:func:`check_rows`) and each column's plausible median.

    ``units``: canonical column -> (unit, where) of a mapped conversion, named in a range
    problem as its likely cause.
    """
    problems = problems if problems is not None else _Problems()
    units = units or {}
    ids = table["patient_id"]
    for i, pid in enumerate(ids):
        if pid is None:
            problems.add(f"row {i + 1} has no patient ID", center=center, column="patient_id")
    dup = ids[ids.notna() & ids.duplicated(keep="first")]
    for pid in dict.fromkeys(dup):
        problems.add("duplicated patient ID", center=center, patient=pid, column="patient_id",
                     fix="keep one row per patient")
    for name, factor in CANONICAL.items():
        kind = factor.kind
        if kind == "id":
            continue
        col = table[name]
        if kind == "code":
            norm = col.map(_norm)
            for pid, v in zip(ids, norm):
                if v is not None and v not in factor.codes:
                    problems.add(f"unknown code {v!r} (allowed: {', '.join(factor.codes)})", center=center,
                                 patient=pid, column=name, fix="map it in the center's clinical_mapping")
            table[name] = norm
        elif kind in ("float", "int", "time"):
            num = pd.to_numeric(col, errors="coerce")
            converted = units.get(name)
            cause = (f" after converting from {converted[0]!r} ({converted[1]}): is that the "
                     f"source column's unit?") if converted else ""
            for pid, v, n in zip(ids, col, num):
                if _norm(v) is not None and pd.isna(n):
                    problems.add(f"not a number: {v!r}{_decimal_hint(v)}", center=center,
                                 patient=pid, column=name)
                    continue
                if pd.isna(n):
                    continue
                if not math.isfinite(n):
                    problems.add(f"not a finite number: {v!r}", center=center, patient=pid,
                                 column=name)
                    continue
                if kind == "time" and n <= 0:
                    problems.add(f"non-positive event time {n:g} days", center=center, patient=pid,
                                 column=name)
                if kind == "int" and not float(n).is_integer():
                    problems.add(f"not a whole number: {n:g}", center=center, patient=pid, column=name)
                if factor.limits is not None:
                    lo, hi = factor.limits
                    if (lo is not None and n < lo) or (hi is not None and n > hi):
                        rng = f"{lo}-{hi}" if hi is not None else f">= {lo}"
                        problems.add(f"value {n:g} out of range ({rng}){cause}", center=center,
                                     patient=pid, column=name)
            table[name] = num.astype("Int64") if kind == "int" and (num.dropna() % 1 == 0).all() else num
            if name in PLAUSIBLE_MEDIAN and num.notna().any():
                lo, hi = PLAUSIBLE_MEDIAN[name]
                median = float(num.median())
                if not lo <= median <= hi and not problems_in(problems, name):
                    unit = CANONICAL_UNIT[COLUMN_KINDS[name]]
                    problems.add(
                        f"implausible median {median:.3g} over {int(num.notna().sum())} patient(s) "
                        f"(expected {lo:g}-{hi:g} {unit}){cause or ': the column in another unit?'}",
                        center=center, column=name,
                        fix=f"give the source column's unit in the mapping ({name} is in {unit})")
    for flag, time in EVENTS:
        for pid, f, t in zip(ids, table[flag], table[time]):
            if f == "1" and pd.isna(t):
                problems.add(f"event flag {flag} = 1 without a time", center=center, patient=pid,
                             column=time, fix=f"give {time} for every {flag} = 1")
    check_rows(table, center, problems)
    return problems


def problems_in(problems: list, column: str) -> bool:
    return any(p.column == column for p in problems)


# (description, the fields it reads, test on one row -> True when inconsistent, the column
# named, fix)
ROW_RULES = [
    ("time to MVI {time_to_mvi_days:g} days after the end of follow-up (os_days {os_days:g})",
     ("time_to_mvi_days", "os_days"),
     lambda r: _num(r["time_to_mvi_days"]) > _num(r["os_days"]) + 1.0, "time_to_mvi_days",
     "time to MVI is censored at or before the last follow-up: check both times and their units"),
    ("capsule breakthrough without a capsule", ("capsule", "capsule_breakthrough"),
     lambda r: r["capsule_breakthrough"] == "1" and r["capsule"] == "0", "capsule_breakthrough",
     "check the two readings"),
    ("Child-Pugh C with BCLC stage {bclc} (Child-Pugh C is BCLC D)", ("child_pugh", "bclc"),
     lambda r: r["child_pugh"] == "C" and r["bclc"] is not None and r["bclc"] != "D", "bclc",
     "check child_pugh and bclc"),
]


def _num(value) -> float:
    v = pd.to_numeric(value, errors="coerce")
    return float("nan") if pd.isna(v) else float(v)


def check_rows(table: pd.DataFrame, center: str, problems: _Problems) -> _Problems:
    """Fields of one row that contradict each other (:data:`ROW_RULES`); NA never does, nor a
    field with a problem of its own."""
    flagged = {(p.patient, p.column) for p in problems}
    for row in table.to_dict("records"):
        row = {k: (None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v)
               for k, v in row.items()}
        for text, fields, broken, column, fix in ROW_RULES:
            if any((row["patient_id"], f) in flagged for f in fields):
                continue
            try:
                bad = bool(broken(row))
            except (TypeError, ValueError):
                bad = False
            if bad:
                problems.add(text.format(**{k: (v if v is not None else float("nan"))
                                            for k, v in row.items()}),
                             center=center, patient=row["patient_id"], column=column, fix=fix)
    return problems


def derive(table: pd.DataFrame) -> pd.DataFrame:
    """AFP group (<25, 25-400, >400 ng/mL) and lesion-number group (1, 2, 3, >3)."""
    table["afp_group"] = afp_group(table["afp_ng_ml"]).to_numpy()
    table["lesion_number_group"] = lesion_group(table["lesion_number"]).to_numpy()
    return table


def raise_problems(problems: list[InputError], what: str) -> None:
    """Log every problem; raise one InputError with the first and the count."""
    if not problems:
        return
    for p in problems:
        log.error("%s", p)
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s) in {what}; all are in the log)" if len(problems) > 1 else ""
    raise InputError(first.problem + more, center=first.center, patient=first.patient,
                     column=first.column, fix=first.fix, path=first.path)


def load_clinical(path, center: str, mapping_path=None, sheet: str | None = None) -> ClinicalTable:
    """Read, map, validate and derive; raises one InputError summarising every problem."""
    mapping = read_yaml(mapping_path) if mapping_path else None
    id_column = mapping.get("id_column", "patient_id") if isinstance(mapping, dict) else "patient_id"
    try:
        src = read_table(path, sheet, id_column, center=center)
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"cannot read the clinical table: {' '.join(str(err).split())[:200]}",
                         center=center, path=path) from None
    table, missing, extras, problems = map_table(src, mapping, center, table_path=path,
                                                 mapping_path=mapping_path)
    if not table.empty:  # value-map problems do not hide the validation's
        lines = mapping_lines(mapping_path)
        units = {name: (spec["unit"], _where(mapping_path, lines, "columns", name, "unit"))
                 for name, spec in ((mapping or {}).get("columns") or {}).items()
                 if isinstance(spec, dict) and "unit" in spec}
        validate(table, center, problems, units)
    raise_problems(problems, f"the clinical table {Path(path).name}")
    table = derive(table)
    order = CANONICAL_COLUMNS + ["center"] + extras + [d for d in DERIVED if d not in extras]
    return ClinicalTable(table[order].reset_index(drop=True), missing, extras)


