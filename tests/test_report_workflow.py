"""The report rules as the workflow declares them: the names common.smk hard-codes (it must
not import the plotting code) are the package's, every report item has its caption, and
`snakemake -n` plans the report's jobs per evaluated center, model and center."""

from __future__ import annotations

import ast
import re
from collections import Counter

import yaml

from conftest import REPO, dry_run_jobs, run_snakemake
from mtnet.report import render
from mtnet.stats.analyses import COLUMNS, CURVE_COLUMNS

RULES = REPO / "workflow" / "rules"


def smk_constant(name: str):
    text = (RULES / "common.smk").read_text()
    m = re.search(rf"^{name} = (\(.*?\))$", text, re.MULTILINE | re.DOTALL)
    assert m, name
    return ast.literal_eval(m.group(1))


def test_common_smk_names_are_the_packages():
    assert smk_constant("STATS_TABLES") == tuple(COLUMNS)
    assert smk_constant("CURVE_TABLES") == tuple(CURVE_COLUMNS)
    assert smk_constant("CENTER_FIGURES") == render.CENTER_FIGURES
    assert smk_constant("CENTER_TABLES") == render.CENTER_TABLES


def test_every_report_item_has_an_existing_caption_and_its_outputs_are_named():
    for smk in RULES.glob("*.smk"):
        for caption in re.findall(r'caption="([^"]+)"', smk.read_text()):
            assert (smk.parent / caption).resolve().is_file(), f"{smk.name}: {caption}"
    report = (RULES / "report.smk").read_text()
    for name in render.CENTER_FIGURES:
        assert f'"results/figures/{{center}}/{name}.svg"' in report, name
    for name in render.CENTER_TABLES:
        assert f'"results/tables/{{center}}/{name}.html"' in report, name
    stats = (RULES / "stats.smk").read_text()
    for name in list(COLUMNS) + list(CURVE_COLUMNS):
        assert f'"results/stats/{{center}}/{name}.tsv"' in stats, name


def test_labels_order_each_centers_items_uniquely():
    text = (RULES / "report.smk").read_text() + (RULES / "stats.smk").read_text()
    labels = re.findall(r'"result": "([^"]+)"', text)
    assert len(labels) == len(set(labels))
    numbered = [label for label in labels if re.match(r"\d\d ", label)]
    assert len(numbered) == len(render.CENTER_FIGURES) + len(render.CENTER_TABLES) + 1 + 12


def test_tiny_plans_the_report_jobs(tmp_path):
    result = run_snakemake(
        ["-n", "--replace-workflow-config"],
        tmp_path,
        timeout=180,
        configfiles=[REPO / "config" / "tiny.yaml"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = dry_run_jobs(result)
    counts = Counter(r for r, _ in jobs)
    evaluated = ["TX", "pooled_train", "pooled_train_apparent"]
    for rule in ("figures", "stats_tables", "ceilings"):
        assert sorted(w["center"] for r, w in jobs if r == rule) == sorted(evaluated), rule
    assert sorted(w["center"] for r, w in jobs if r == "tumor_montage") == ["TA", "TB", "TX"]
    models = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())["models"]
    assert sorted(w["model"] for r, w in jobs if r == "training_figure") == sorted(models)
    for rule in ("table1_html", "checklist", "manifest"):
        assert counts[rule] == 1, rule
