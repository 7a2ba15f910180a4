"""Journal-formatted HTML tables from TSVs written by the real statistics code on synthetic
data: the rounding rules on specific cells (expected strings derived here from the raw
TSV numbers), NA as an em dash with its reason as tooltip and footnote, the banner row,
and nothing but a self-contained <table>."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

from mtnet.errors import InputError
from mtnet.report import formatting as fmt
from mtnet.report import tables as T
from mtnet.report.formatting import SYNTHETIC_BANNER
from report_fixtures import read, write_center_tsvs


@pytest.fixture(scope="module")
def tsvs(tmp_path_factory):
    return write_center_tsvs(tmp_path_factory.mktemp("report_tables"), degenerate=True)


class Table(HTMLParser):
    """Rows of (text, attrs) cells, the caption, the footnotes, every tag seen."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.tags, self.caption, self.foot = [], [], "", ""
        self._cell = self._where = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("caption", "tfoot"):
            self._where = tag
        if tag == "tr" and self._where != "tfoot":
            self.rows.append([])
        if tag in ("td", "th") and self._where != "tfoot":
            self._cell = [dict(attrs), ""]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((self._cell[1].strip(), self._cell[0]))
            self._cell = None
        if tag in ("caption", "tfoot"):
            self._where = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        elif self._where == "caption":
            self.caption += data
        elif self._where == "tfoot":
            self.foot += data

    def row(self, first: str, second: str | None = None) -> list[str]:
        for r in self.rows:
            texts = [c[0] for c in r]
            if texts and texts[0] == first and (second is None or texts[1] == second):
                return texts
        raise AssertionError(f"no row {first!r} {second!r}")

    def cell(self, first, column, second=None):
        for r in self.rows:
            if r and r[0][0] == first and (second is None or r[1][0] == second):
                return r[column]
        raise AssertionError(f"no row {first!r}")


def ci(a, lo, hi):
    return f"{a:.3f} [{lo:.3f}–{hi:.3f}]"


def p_text(p):
    return "< 0.001" if p < 0.001 else f"{p:#.3g}"


def test_number_formats():
    assert fmt.fmt_ci(0.8124, 0.70149, 0.90191) == "0.812 [0.701–0.902]"
    assert fmt.fmt_p(0.000999) == "< 0.001"
    assert fmt.fmt_p(0.001) == "0.00100"
    assert fmt.fmt_p(0.0457123) == "0.0457"
    assert fmt.fmt_p(0.5) == "0.500"
    assert fmt.fmt_p(1.0) == "1.00"
    assert fmt.fmt_p(float("nan")) == "—" and fmt.fmt_p("NA") == "—"
    assert fmt.fmt_hr(0.0731, 0.0322, 0.1668) == "0.073 [0.032–0.167]"
    assert fmt.fmt_count(85.0) == "85" and fmt.fmt_count(None) == "—"
    assert fmt.fmt_decimal(-0.0001) == "0.000"
    assert fmt.level_label("age", "<=60y") == "≤ 60 y"
    assert fmt.level_label("afp_ng_ml", "25-400") == "25–400"
    assert fmt.level_label("cirrhosis", "1") == "Yes"
    assert fmt.level_label("bclc", "0") == "0"


def test_discrimination_cells_and_na_with_reason(tsvs):
    df = read(tsvs["discrimination"]).set_index("model")
    t = Table(T.discrimination_html(tsvs["discrimination"], synthetic=True))
    r = df.loc["Model-CR-DR"]
    row = t.row("Model-CR-DR")
    assert row[4] == ci(r["auc"], r["ci_low"], r["ci_high"])
    assert row[2] == str(int(r["n"])) and row[3] == str(int(r["n_events"]))
    assert row[6] == f"{r['sensitivity']:.3f}"
    # Model-DR has a NaN risk: NA row, em dash with the reason as tooltip and footnote
    reason = df.loc["Model-DR", "reason"]
    assert reason.startswith("1 missing (NaN) risk")
    text, attrs = t.cell("Model-DR", 4)
    assert text == "—a" and attrs["title"] == reason
    assert f"a {reason}" in " ".join(t.foot.split())
    assert t.rows[0][0][0] == SYNTHETIC_BANNER and t.rows[0][0][1]["colspan"] == "8"
    assert "Discrimination — TX." in t.caption and "DeLong" in t.caption


def test_model_comparison_per_pair(tsvs):
    disc = read(tsvs["discrimination"]).set_index("model")
    dl = read(tsvs["delong"])
    ni = read(tsvs["nri_idi"])
    html = T.model_comparison_html(
        tsvs["discrimination"], tsvs["delong"], tsvs["nri_idi"], synthetic=False
    )
    t = Table(html)
    assert SYNTHETIC_BANNER not in html
    pairs = dl[dl["reason"] == ""]
    assert len(pairs) >= 2
    for _, r in pairs.iterrows():
        row = t.row(r["model"], r["comparator"])
        c = disc.loc[r["comparator"]]
        assert row[4] == ci(c["auc"], c["ci_low"], c["ci_high"])
        assert row[5] == f"{r['z']:.2f}" and row[6] == p_text(r["p"])
        pair = ni[(ni["model"] == r["model"]) & (ni["comparator"] == r["comparator"])]
        values = pair.set_index("measure")
        assert row[7] == f"{values.loc['nri_continuous', 'value']:.3f}"
        assert row[10] == p_text(values.loc["nri_categorical", "p"])
        assert row[11] == f"{values.loc['idi', 'value']:.3f}"
    assert any(p_text(p) == "< 0.001" for p in pairs["p"])  # the rule's both branches
    assert any(p >= 0.001 for p in ni["p"].dropna())
    dr = t.row("Model-CR-DR", "Model-DR")
    assert dr[5] in ("—a", "—b") and "NaN" in t.foot
    assert "NRI, categorical (0.157)" in [c[0] for c in t.rows[0]]


def test_model_comparison_without_pairs(tsvs, tmp_path):
    dl = read(tsvs["delong"]).iloc[:0]
    ni = read(tsvs["nri_idi"]).iloc[:0]
    t = Table(T.model_comparison_html(tsvs["discrimination"], dl, ni, synthetic=True))
    assert t.rows[-1][0][0].startswith("No model pair of the paper")
    assert t.rows[-1][0][1]["colspan"] == "13"


def test_calibration_summary(tsvs):
    df = read(tsvs["calibration"])
    s = df[(df["row"] == "summary") & (df["model"] == "Model-CR")].iloc[0]
    t = Table(T.calibration_html(tsvs["calibration"], synthetic=True))
    row = t.row("Model-CR")
    assert row[3:6] == [f"{s['intercept']:.3f}", f"{s['slope']:.3f}", f"{s['brier']:.3f}"]
    assert row[6] == f"{s['hl_chi2']:.2f} ({int(s['hl_df'])})"
    assert row[7] == p_text(s["hl_p"])
    assert len(t.rows) == 2 + 4  # banner, header, one row per model


def test_risk_groups(tsvs):
    df = read(tsvs["survival"])
    t = Table(T.risk_groups_html(tsvs["survival"], synthetic=True))
    youden = df[(df["split_by"] == "youden") & (df["endpoint"] == "os")]
    cut = youden["threshold"].iloc[0]
    comp = youden[youden["row"] == "comparison"].iloc[0]
    low = youden[(youden["row"] == "group") & (youden["group"] == "low")].iloc[0]
    split = f"Youden threshold of the training centers ({cut:.3f})"
    row = t.row(split, "Overall survival")
    assert row[2] == f"Low (≤ {cut:.3f})" and row[3] == str(int(low["n"]))
    assert row[6] == ci(comp["hr"], comp["hr_ci_low"], comp["hr_ci_high"])
    assert row[7] == p_text(comp["hr_p"]) and row[8] == p_text(comp["logrank_p"])
    cells = t.rows[t.rows.index(next(r for r in t.rows if [c[0] for c in r] == row))]
    assert cells[6][1]["rowspan"] == "2"
    high = next(r for r in t.rows[t.rows.index(cells) + 1 :])
    assert high[0][0] == f"High (> {cut:.3f})"
    # a KM median that is NA without a reason is "not reached"
    groups = df[(df["row"] == "group") & df["median_days"].isna() & (df["reason"] == "")]
    assert len(groups) and "not reached" in [c[0] for r in t.rows for c in r]
    # the H-score stand-in is footnoted
    assert "no h_score column" in t.foot


def test_table1(tsvs):
    df = read(tsvs["table1"])
    t = Table(T.table1_html(tsvs["table1"], synthetic=True))
    age = df[(df["variable"] == "age") & (df["level"].fillna("") == "")].iloc[0]
    row = t.row("Age (years)")
    assert row[1] == age["train"] and row[2] == age["external"]
    assert row[3] == {"t-test": "Student's t", "wilcoxon": "Wilcoxon rank-sum"}[age["test"]]
    assert row[4] == p_text(age["p"])
    diam = t.row("Max diameter (mm)")
    assert "–" in diam[1] and "-" not in diam[1]  # median (min–max)
    male = df[(df["variable"] == "sex") & (df["level"] == "M")].iloc[0]
    assert t.row("Male")[1:3] == [male["train"], male["external"]]
    assert t.row("Male")[3:] == ["", ""]
    head = [c[0] for c in t.rows[1]]
    assert head == ["Characteristic", "Training vs TX"]


def test_untested_variable_shows_its_note(tsvs, tmp_path):
    df = read(tsvs["table1"])
    hbv = (df["variable"] == "hbv") & (df["level"].fillna("") == "")
    df.loc[hbv, ["test", "p"]] = np.nan
    df.loc[hbv, "note"] = "one level only"
    t = Table(T.table1_html(df, synthetic=False))
    row = t.cell("HBV infection", 3)
    assert row[0] == "—a" and row[1]["title"] == "one level only"


@pytest.mark.parametrize(
    "name", ["table1", "discrimination", "model_comparison", "calibration", "risk_groups"]
)
def test_tables_are_self_contained(name, tsvs):
    paths = {
        "table1": lambda s: T.table1_html(tsvs["table1"], synthetic=s),
        "discrimination": lambda s: T.discrimination_html(tsvs["discrimination"], synthetic=s),
        "model_comparison": lambda s: T.model_comparison_html(
            tsvs["discrimination"], tsvs["delong"], tsvs["nri_idi"], synthetic=s
        ),
        "calibration": lambda s: T.calibration_html(tsvs["calibration"], synthetic=s),
        "risk_groups": lambda s: T.risk_groups_html(tsvs["survival"], synthetic=s),
    }
    html = paths[name](True)
    t = Table(html)
    assert html.startswith("<table") and html.rstrip().endswith("</table>")
    assert t.tags.count("table") == 1 and t.tags.count("caption") == 1
    assert not {"script", "style", "link", "img"} & set(t.tags)
    assert not any(k.startswith("on") for r in t.rows for _, attrs in r for k in attrs)
    banner = t.rows[0]
    assert banner[0][0] == SYNTHETIC_BANNER
    width = max(sum(int(c[1].get("colspan", 1)) for c in r) for r in t.rows[1:2])
    assert int(banner[0][1]["colspan"]) >= width
    assert SYNTHETIC_BANNER not in paths[name](False)
    assert "NaN" not in "".join(c[0] for r in t.rows for c in r)
    assert " NA" not in "".join(" " + c[0] for r in t.rows for c in r)


def test_missing_file_and_column_are_input_errors(tsvs, tmp_path):
    with pytest.raises(InputError, match="nope.tsv: statistics table not found"):
        T.calibration_html(tmp_path / "nope.tsv", synthetic=True)
    bad = tmp_path / "bad.tsv"
    read(tsvs["calibration"]).drop(columns="slope").to_csv(bad, sep="\t", index=False)
    with pytest.raises(InputError, match=r"statistics table lacks column\(s\) slope"):
        T.calibration_html(bad, synthetic=True)
