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

Without a mapping the table must already use the canonical names. Canonical columns that
are neither mapped nor present are NA and listed in missing_columns.tsv with a reason; they
are never invented. Derived columns (always appended after ``center``): ``afp_group``
(<25, 25-400, >400 ng/mL, paper Table 1) and ``lesion_number_group`` (1, 2, 3, >3).

Validation collects one message per problem naming center, patient and column; all are
logged and a single :class:`InputError` summarises the first with the count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mtnet.config import read_yaml
from mtnet.errors import InputError
from mtnet.factors import CANONICAL, CANONICAL_COLUMNS, DERIVED, EVENTS, afp_group, as_code, lesion_group

log = logging.getLogger(__name__)

# unit -> factor to the canonical unit (days for times, mm for lengths)
UNITS = {
    "days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25,
    "mm": 1.0, "cm": 10.0,
}


@dataclass
class ClinicalTable:
    table: pd.DataFrame  # canonical columns, `center`, extras, derived (patient_id as str)
    missing: pd.DataFrame  # column, reason
    extras: list[str]


def read_table(path: Path, sheet: str | None = None, id_column: str = "patient_id") -> pd.DataFrame:
    """CSV/TSV or XLSX (first sheet unless named); the ID column as text (keeps '007')."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype={id_column: str})
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    return pd.read_csv(path, sep=sep, dtype={id_column: str})


_norm = as_code


class _Problems(list):
    def add(self, problem, *, center, patient=None, column=None, fix=None):
        self.append(InputError(problem, center=center, patient=patient, column=column, fix=fix))


def _map_column(src: pd.DataFrame, spec: dict, name: str, ids: pd.Series, center, path, problems):
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
        factor = UNITS[spec["unit"]]
        num = pd.to_numeric(values, errors="coerce")
        for pid, v, n in zip(ids, values, num):
            if _norm(v) is not None and pd.isna(n):
                problems.add(f"not a number: {v!r}", center=center, patient=pid, column=name)
        values = num * factor
    return values


MAPPING_KEYS = {"id_column", "columns", "missing", "extra"}
SPEC_KEYS = {"from", "values", "unit", "constant", "reason"}


def _check_mapping(mapping: dict, path, center=None) -> None:
    """Refuse typos and unknown units in a mapping file, naming the key."""
    if not isinstance(mapping, dict):
        raise InputError("a clinical mapping must be a mapping of keys", path=path, center=center)
    unknown = set(mapping) - MAPPING_KEYS
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                         f"(allowed: {', '.join(sorted(MAPPING_KEYS))})", path=path, center=center)
    for section in ("columns", "extra"):
        for name, spec in (mapping.get(section) or {}).items():
            if isinstance(spec, dict) and set(spec) - SPEC_KEYS:
                raise InputError(f"{section}.{name}: unknown key(s) "
                                 f"{', '.join(sorted(map(str, set(spec) - SPEC_KEYS)))} "
                                 f"(allowed: {', '.join(sorted(SPEC_KEYS))})", path=path, center=center)
    for section in ("columns", "extra"):
        for name, spec in (mapping.get(section) or {}).items():
            if section == "columns" and name not in CANONICAL:
                raise InputError(f"'{name}' is not a canonical column", path=path, center=center,
                                 fix=f"use one of {', '.join(CANONICAL_COLUMNS)} or list it under extra:")
            if not isinstance(spec, dict) or not ({"from", "constant"} & set(spec)):
                raise InputError(f"column '{name}' needs `from:` or `constant:`", path=path, center=center)
            if "unit" in spec and spec["unit"] not in UNITS:
                raise InputError(f"column '{name}': unknown unit {spec['unit']!r} "
                                 f"(known: {', '.join(UNITS)})", path=path, center=center)
    for name in mapping.get("missing") or {}:
        if name not in CANONICAL:
            raise InputError(f"missing: '{name}' is not a canonical column", path=path, center=center)


def map_table(src: pd.DataFrame, mapping: dict | None, center: str, *, table_path=None,
              mapping_path=None) -> tuple[pd.DataFrame, pd.DataFrame, list[str], _Problems]:
    """Translate ``src`` to canonical columns; returns (table, missing, extras, problems)."""
    problems = _Problems()
    src = src.copy()
    src.columns = [str(c).strip() for c in src.columns]
    if mapping is None:
        mapping = {"id_column": "patient_id",
                   "columns": {c: {"from": c} for c in CANONICAL_COLUMNS[1:] if c in src.columns}}
    _check_mapping(mapping, mapping_path, center)
    id_col = mapping.get("id_column", "patient_id")
    needed = [id_col] + [spec["from"] for sec in ("columns", "extra")
                         for spec in (mapping.get(sec) or {}).values() if "from" in spec]
    absent = [c for c in dict.fromkeys(needed) if c not in src.columns]
    if absent:
        for c in absent:
            table_name = Path(table_path).name if table_path else "the table"
            problems.add(f"missing required column '{c}' in {table_name}", center=center, column=c,
                         fix=f"check the table or the mapping {mapping_path or ''}".strip())
        return pd.DataFrame(), pd.DataFrame(), [], problems

    ids = src[id_col].map(_norm)
    out = pd.DataFrame(index=src.index)
    out["patient_id"] = ids
    missing_rows = []
    reasons = mapping.get("missing") or {}
    columns = mapping.get("columns") or {}
    for name in CANONICAL_COLUMNS[1:]:
        if name in columns:
            out[name] = _map_column(src, columns[name], name, ids, center, mapping_path, problems)
        else:
            out[name] = None
            missing_rows.append((name, reasons.get(name, "not in the source table")))
    out["center"] = center
    extras = list((mapping.get("extra") or {}))
    for name in extras:
        out[name] = _map_column(src, mapping["extra"][name], name, ids, center, mapping_path, problems)
    missing = pd.DataFrame(missing_rows, columns=["column", "reason"])
    return out, missing, extras, problems


def validate(table: pd.DataFrame, center: str, problems: _Problems | None = None) -> _Problems:
    """Type, code and range checks; duplicated IDs; event times (see module docstring)."""
    problems = problems if problems is not None else _Problems()
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
            for pid, v, n in zip(ids, col, num):
                if _norm(v) is not None and pd.isna(n):
                    problems.add(f"not a number: {v!r}", center=center, patient=pid, column=name)
                    continue
                if pd.isna(n):
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
                        problems.add(f"value {n:g} out of range ({rng})", center=center, patient=pid,
                                     column=name)
            table[name] = num.astype("Int64") if kind == "int" and (num.dropna() % 1 == 0).all() else num
    for flag, time in EVENTS:
        for pid, f, t in zip(ids, table[flag], table[time]):
            if f == "1" and pd.isna(t):
                problems.add(f"event flag {flag} = 1 without a time", center=center, patient=pid,
                             column=time, fix=f"give {time} for every {flag} = 1")
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
                     column=first.column, fix=first.fix)


def load_clinical(path, center: str, mapping_path=None, sheet: str | None = None) -> ClinicalTable:
    """Read, map, validate and derive; raises one InputError summarising every problem."""
    mapping = read_yaml(mapping_path) if mapping_path else None
    id_column = mapping.get("id_column", "patient_id") if isinstance(mapping, dict) else "patient_id"
    try:
        src = read_table(path, sheet, id_column)
    except Exception as err:
        raise InputError(f"cannot read the clinical table: {' '.join(str(err).split())[:200]}",
                         center=center, path=path) from None
    table, missing, extras, problems = map_table(src, mapping, center, table_path=path,
                                                 mapping_path=mapping_path)
    if not table.empty:  # value-map problems do not hide the validation's
        validate(table, center, problems)
    raise_problems(problems, f"the clinical table {Path(path).name}")
    table = derive(table)
    order = CANONICAL_COLUMNS + ["center"] + extras + [d for d in DERIVED if d not in extras]
    return ClinicalTable(table[order].reset_index(drop=True), missing, extras)


