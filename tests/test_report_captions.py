"""Captions: one per figure and table function, each stating its method inline; the .rst
snippets for Snakemake's report(...) are the module's text."""

from __future__ import annotations

import inspect

import pytest

from mtnet.report import captions, figures, tables

# the method words each caption must carry
METHODS = {
    "roc": ["DeLong", "bootstrap", "ci.se", "seed"],
    "calibration": ["Wilson", "lowess", "intercept", "slope", "Brier", "quantiles"],
    "decision_curve": ["Vickers", "pt/(1 − pt)", "treat all", "treat none"],
    "km": ["log-log", "Greenwood", "log-rank", "Cox", "Efron", "Youden", "H-score", "at risk"],
    "forest": ["unpaired DeLong", "Welch-Satterthwaite", "fewer than 10"],
    "ceilings": ["Bayes-optimal", "100,000", "independent draw"],
    "training_curves": ["epoch", "Dice", "inner validation"],
    "fit_path": ["cross-validated", "L2 penalty", "inverse L1 penalty", "master seed"],
    "table1": ["Kolmogorov-Smirnov", "t-test", "Wilcoxon", "Fisher", "Yates"],
    "discrimination": ["DeLong", "Youden", "pooled training"],
    "model_comparison": ["paired DeLong", "Pencina", "0.157", "integrated discrimination"],
    "calibration_summary": ["val.prob", "Hosmer-Lemeshow", "groups − 2"],
    "risk_groups": ["Cox", "Efron", "log-rank", "not reached"],
}
FUNCTIONS = {
    "roc": figures.roc_figure,
    "calibration": figures.calibration_figure,
    "decision_curve": figures.decision_curve_figure,
    "km": figures.km_figure,
    "forest": figures.forest_figure,
    "ceilings": figures.ceilings_figure,
    "training_curves": figures.training_curves_figure,
    "fit_path": figures.fit_path_figure,
    "table1": tables.table1_html,
    "discrimination": tables.discrimination_html,
    "model_comparison": tables.model_comparison_html,
    "calibration_summary": tables.calibration_html,
    "risk_groups": tables.risk_groups_html,
}


def test_every_figure_and_table_function_has_a_caption():
    public = {
        name
        for module, suffix in ((figures, "_figure"), (tables, "_html"))
        for name, obj in vars(module).items()
        if name.endswith(suffix) and inspect.isfunction(obj) and not name.startswith(("_", "save_"))
    }
    assert public == {f.__name__ for f in FUNCTIONS.values()}
    assert set(FUNCTIONS) == set(captions.CAPTIONS) == set(METHODS)
    for name, func in FUNCTIONS.items():
        assert "synthetic" in inspect.signature(func).parameters, name
        kind = "figure" if func.__module__.endswith("figures") else "table"
        assert captions.CAPTIONS[name].kind == kind


@pytest.mark.parametrize("name", list(METHODS))
def test_caption_states_its_method(name):
    text = captions.caption(name)
    for word in METHODS[name]:
        assert word in text, f"{name}: {word!r}"
    assert "docs/" not in text and "see " not in text.lower()
    assert captions.caption(name, synthetic=True).endswith(captions.SYNTHETIC_SENTENCE)
    if captions.CAPTIONS[name].kind == "table":
        assert captions.TABLE_FORMAT in text


def test_rst_files_are_the_captions(tmp_path):
    written = captions.write_rst(tmp_path)
    assert {p.name for p in written} == {p.name for p in captions.RST_DIR.glob("*.rst")}
    for p in written:
        committed = captions.RST_DIR / p.name
        assert committed.read_text(encoding="utf-8") == p.read_text(
            encoding="utf-8"
        ), f"{committed} is stale: python -m mtnet.report.captions"
        assert p.read_text(encoding="utf-8").startswith("**")
