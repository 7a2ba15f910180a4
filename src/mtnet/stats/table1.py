"""Table 1: baseline characteristics, pooled training centers against each external center.

Tests follow the paper (section 2.8): for continuous variables a Kolmogorov-Smirnov test of
normality in each group, then Student's t-test when both are normal (KS p > 0.05), else the
Wilcoxon rank-sum test; ordinal grades (BCLC, lesion number 1/2/3/>3, AFP <25/25-400/>400)
the Wilcoxon rank-sum test; categorical variables Pearson's chi-squared (Yates-corrected for
2x2) or Fisher's exact test when an expected count is below 5.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mtnet.errors import InputError
from mtnet.stats import py_engine
from mtnet.stats.api import _engine
from mtnet.factors import CANONICAL, TABLE1_COLUMNS, level_order, tabulated
from mtnet.tables import read_clinical_tables, write_tsv

log = logging.getLogger(__name__)

COLUMNS = ["variable", "type", "level", "a", "b", "test", "statistic", "p", "note"]
TABLE1_OUTPUT = [
    "external_center",
    "variable",
    "type",
    "level",
    "train",
    "external",
    "test",
    "statistic",
    "p",
    "note",
]
NORMALITY_ALPHA = 0.05
MIN_GROUP = 3


def _kind(df_a, df_b, column) -> str:
    if column in CANONICAL and CANONICAL[column].table1:
        return CANONICAL[column].table1
    both = pd.concat([df_a[column], df_b[column]])
    numeric = pd.to_numeric(both, errors="coerce")
    return "continuous" if numeric.notna().all() and numeric.nunique() > 10 else "categorical"


def _fmt(x: float) -> str:
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def _continuous(a, b, r):
    if min(len(a), len(b)) < MIN_GROUP:
        return None, np.nan, np.nan, f"fewer than {MIN_GROUP} values in a group", None
    ks = [r.call("mtnet_ks_normal", x)["p"] if r else py_engine.ks_normal(x) for x in (a, b)]
    normal = all(p > NORMALITY_ALPHA for p in ks)
    if normal:
        out = r.call("mtnet_t_test", a, b) if r else py_engine.t_test(a, b)
        test = "t-test"
    else:
        out = r.call("mtnet_wilcox", a, b) if r else py_engine.wilcox(a, b)
        test = "wilcoxon"
    note = f"KS normality p = {ks[0]:.3g} / {ks[1]:.3g}"
    return test, out["statistic"], out["p"], note, normal


def _summary_continuous(x, normal) -> str:
    if len(x) == 0:
        return "NA"
    if normal:
        return f"{_fmt(x.mean())} ± {_fmt(x.std(ddof=1))}"
    return f"{_fmt(np.median(x))} ({_fmt(x.min())}-{_fmt(x.max())})"


def baseline_table(
    df_a: pd.DataFrame, df_b: pd.DataFrame, columns=None, *, engine: str = "r"
) -> pd.DataFrame:
    """Table 1 of group a against group b with the paper's choice of test per variable.

    Columns: variable, type, level, a, b, test, statistic, p, note. A continuous variable is
    one row (mean ± SD when normal in both groups, else median (min-max)); a categorical or
    ordinal variable is one row carrying the test (level empty) then one row per level with
    n (%) of the non-missing. Missing values are counted in ``note``; a variable that cannot
    be tested (absent, one level only, fewer than 3 values in a group) gets test NA and the
    reason in ``note``.
    """
    r = _engine(engine)
    columns = (
        list(columns)
        if columns is not None
        else [c for c in TABLE1_COLUMNS if c in df_a or c in df_b]
    )
    rows = []
    for col in columns:
        if col not in df_a or col not in df_b:
            rows.append(
                dict(
                    variable=col,
                    type=None,
                    level=None,
                    a=None,
                    b=None,
                    test=None,
                    statistic=np.nan,
                    p=np.nan,
                    note="column absent in a group",
                )
            )
            continue
        kind = _kind(df_a, df_b, col)
        va, vb = tabulated(df_a, col), tabulated(df_b, col)
        miss = f"missing {int(va.isna().sum())} / {int(vb.isna().sum())}"
        va, vb = va.dropna(), vb.dropna()
        if kind == "continuous":
            a, b = va.to_numpy(float), vb.to_numpy(float)
            test, stat, p, note, normal = _continuous(a, b, r)
            rows.append(
                dict(
                    variable=col,
                    type=kind,
                    level="",
                    a=_summary_continuous(a, normal),
                    b=_summary_continuous(b, normal),
                    test=test,
                    statistic=stat,
                    p=p,
                    note="; ".join(x for x in (note, miss) if x),
                )
            )
            continue
        levels = level_order(col, set(va) | set(vb))
        counts = np.array([[np.sum(va == lv), np.sum(vb == lv)] for lv in levels], dtype=float)
        test, stat, p, note = None, np.nan, np.nan, ""
        if len(levels) < 2:
            note = "one level only"
        elif min(len(va), len(vb)) < MIN_GROUP:
            note = f"fewer than {MIN_GROUP} values in a group"
        elif kind == "ordinal":
            ia = np.array([levels.index(v) for v in va], dtype=float)
            ib = np.array([levels.index(v) for v in vb], dtype=float)
            out = r.call("mtnet_wilcox", ia, ib) if r else py_engine.wilcox(ia, ib)
            test, stat, p = "wilcoxon", out["statistic"], out["p"]
        else:
            expected = counts.sum(1, keepdims=True) * counts.sum(0, keepdims=True) / counts.sum()
            if (expected < 5).any():
                out = r.table("mtnet_fisher", counts) if r else py_engine.fisher(counts)
                test = "fisher"
            else:
                out = r.table("mtnet_chisq", counts) if r else py_engine.chisq(counts)
                test = "chi-squared"
            stat, p = out["statistic"], out["p"]
        rows.append(
            dict(
                variable=col,
                type=kind,
                level="",
                a=f"n = {len(va)}",
                b=f"n = {len(vb)}",
                test=test,
                statistic=stat,
                p=p,
                note="; ".join(x for x in (note, miss) if x),
            )
        )
        for lv, (ca, cb) in zip(levels, counts):
            rows.append(
                dict(
                    variable=col,
                    type=kind,
                    level=lv,
                    a=f"{int(ca)} ({100 * ca / max(len(va), 1):.1f}%)",
                    b=f"{int(cb)} ({100 * cb / max(len(vb), 1):.1f}%)",
                    test=None,
                    statistic=np.nan,
                    p=np.nan,
                    note="",
                )
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def write_table1(
    train_tables, external_tables, external_centers, out_path, *, engine: str = "r"
) -> pd.DataFrame:
    """Table 1 (pooled training centers vs each external center) as TSV with the columns
    external_center, variable, type, level, train, external, test, statistic, p, note."""
    if len(external_tables) != len(external_centers):
        raise InputError(
            f"{len(external_tables)} external tables for {len(external_centers)} centers"
        )
    train = read_clinical_tables(train_tables)
    parts = []
    for center, path in zip(external_centers, external_tables):
        ext = read_clinical_tables([path])
        t = baseline_table(train, ext, engine=engine).rename(
            columns={"a": "train", "b": "external"}
        )
        t.insert(0, "external_center", center)
        parts.append(t)
        log.info("Table 1: training (%d) vs %s (%d)", len(train), center, len(ext))
    out = pd.concat(parts, ignore_index=True)[TABLE1_OUTPUT]
    write_tsv(out, out_path)
    return out
