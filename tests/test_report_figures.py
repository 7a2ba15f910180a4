"""The report's figures on real outputs of the statistics code (synthetic data): each shows
what it must (legend AUCs, numbers at risk, ceilings, p-values, the banner), draws the
numbers it was given, and renders to the same SVG bytes twice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from mtnet.errors import InputError
from mtnet.report import figures as F
from mtnet.report.formatting import SYNTHETIC_BANNER
from report_fixtures import CEILINGS, read, typed_results, write_center_tsvs


@pytest.fixture(scope="module")
def results():
    return typed_results("python")


@pytest.fixture(scope="module")
def tsvs(tmp_path_factory):
    return write_center_tsvs(tmp_path_factory.mktemp("report_figures"))


def training_log():
    e = np.arange(1, 13)
    log = pd.DataFrame(
        {
            "epoch": e,
            "lr": 0.005 * (1 - e / 13) ** 0.9,
            "train_loss": 1 / np.sqrt(e),
            "bce": 0.6 / np.sqrt(e),
            "seg_loss": 0.4 / np.sqrt(e),
            "seg_dice": 1 - 0.5 / np.sqrt(e),
            "inner_auc": np.where(e % 3 == 0, 0.6 + 0.02 * e, np.nan),
            "inner_loss": np.where(e % 3 == 0, 0.7 / np.sqrt(e), np.nan),
            "seconds": 12.5,
        }
    )
    log.loc[4, "seg_dice"] = np.nan
    return log


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def by_gid(fig, gid):
    found = [a for a in fig.findobj(lambda a: a.get_gid() == gid)]
    assert found, f"no artist {gid}"
    return found[0]


def build(name, results, tsvs, synthetic=True):
    """Each figure of the report from the fixtures."""
    if name == "roc":
        return F.roc_figure(results["auc"], center="TX", synthetic=synthetic)
    if name == "calibration":
        return F.calibration_figure(results["calibration"], center="TX", synthetic=synthetic)
    if name == "decision_curve":
        return F.decision_curve_figure(results["net_benefit"], center="TX", synthetic=synthetic)
    if name == "km":
        return F.km_figure(
            results["km_time_to_mvi"],
            cox=results["cox_time_to_mvi"],
            endpoint="time_to_mvi",
            center="TX",
            synthetic=synthetic,
            labels={"low": "risk ≤ median", "high": "risk > median"},
        )
    if name == "forest":
        return F.forest_figure(tsvs["subgroups"], center="TX", synthetic=synthetic)
    if name == "ceilings":
        return F.ceilings_figure(
            tsvs["discrimination"], tsvs["ceilings"], center="TX", synthetic=synthetic,
            information_sets=INFO,
        )
    if name == "training_curves":
        return F.training_curves_figure(training_log(), model="Model-CR-DR", synthetic=synthetic)
    raise KeyError(name)


FIGURES = ["roc", "calibration", "decision_curve", "km", "forest", "ceilings", "training_curves"]


@pytest.mark.parametrize("name", FIGURES)
def test_figure_is_deterministic_and_carries_the_banner(name, results, tsvs):
    first = build(name, results, tsvs)
    a, b = F.svg_bytes(first), F.svg_bytes(build(name, results, tsvs))
    assert a == b
    assert b'id="synthetic-banner"' in a and b"<dc:date" not in a
    assert SYNTHETIC_BANNER in texts(first)
    assert SYNTHETIC_BANNER not in texts(build(name, results, tsvs, synthetic=False))


def test_roc_legend_has_each_auc_and_the_curves_are_the_roc_points(results):
    fig = F.roc_figure(results["auc"], center="TX", synthetic=True)
    legend = texts(fig.axes[0].get_legend())
    for model, a in results["auc"].items():
        want = f"{model}: AUC {a.auc:.3f} [{a.ci_low:.3f}–{a.ci_high:.3f}]"
        assert want in legend
        line = by_gid(fig, f"roc:{model}")
        assert np.array_equal(line.get_xydata(), a.roc[["fpr", "tpr"]].to_numpy())
    assert any("bootstrap band (200 resamples)" in t for t in legend)


def test_calibration_draws_the_bins_smooth_and_histogram(results):
    fig = F.calibration_figure(results["calibration"], center="TX", synthetic=False)
    ax, hist = fig.axes
    for model, c in results["calibration"].items():
        points = by_gid(fig, f"bins:{model}")  # the errorbar's data line
        assert np.allclose(points.get_xydata(), c.curve[["mean_predicted", "observed"]])
        smooth = by_gid(fig, f"smooth:{model}")
        assert np.allclose(smooth.get_ydata(), c.smooth["observed"])
        assert any(f"slope {c.slope:.2f}" in t for t in texts(ax.get_legend()))
    # one step histogram per model, each counting every patient
    n = len(next(iter(results["calibration"].values())).smooth)
    assert len(hist.patches) == len(results["calibration"])
    for patch in hist.patches:
        heights = patch.get_path().vertices[1::2, 1]
        assert heights.max() <= n


def test_decision_curve_from_results_and_from_tsv_rows(results, tsvs):
    fig = F.decision_curve_figure(results["net_benefit"], center="TX", synthetic=False)
    for model, nb in results["net_benefit"].items():
        assert np.allclose(by_gid(fig, f"nb:{model}").get_ydata(), nb["net_benefit"])
    labels = texts(fig.axes[0].get_legend())
    assert "Treat all" in labels and "Treat none" in labels
    rows = read(tsvs["decision_curve"])
    fig = F.decision_curve_figure(rows, center="TX", synthetic=True)
    for model, g in rows.groupby("model"):
        assert np.allclose(by_gid(fig, f"nb:{model}").get_ydata(), g["net_benefit"])


def test_km_numbers_at_risk_and_statistics(results):
    km, cox = results["km_os"], results["cox_os"]
    fig = F.km_figure(km, cox=cox, endpoint="os", center="TX", synthetic=True)
    for _, r in km.at_risk.iterrows():
        t = by_gid(fig, f"at-risk:{r['group']}:{r['time']:g}")
        assert t.get_text() == str(int(r["n_risk"]))
        assert t.get_position()[0] == r["time"]
    assert len(km.at_risk) == sum(
        1 for a in fig.findobj(Text) if str(a.get_gid()).startswith("at-risk:")
    )
    stats_text = by_gid(fig, "km-statistics").get_text()
    p = "p < 0.001" if km.p < 0.001 else f"p = {km.p:#.3g}"
    assert f"Log-rank {p}" in stats_text
    assert f"HR (low vs high) {cox.hr:.3f} [{cox.ci_low:.3f}–{cox.ci_high:.3f}]" in stats_text
    for g in ("low", "high"):
        cur = km.curves[km.curves["group"] == g]
        assert np.allclose(by_gid(fig, f"km:{g}").get_ydata(), cur["survival"])
    legend = texts(fig.axes[0].get_legend())
    n_low = int(km.groups.set_index("group").loc["low", "n"])
    assert any(t.startswith(f"low (n = {n_low},") for t in legend)


def test_forest_shows_each_level_auc_and_the_between_level_p(tsvs):
    rows = read(tsvs["subgroups"])
    fig = F.forest_figure(rows, center="TX", synthetic=True, overall=(0.9, 0.85, 0.95))
    all_text = texts(fig)
    levels = rows[rows["row"] == "level"]
    for _, r in levels.iterrows():
        if pd.notna(r["auc"]):
            assert f"{r['auc']:.3f} [{r['ci_low']:.3f}–{r['ci_high']:.3f}]" in all_text
            point = by_gid(fig, f"subgroup:{r['factor']}:{r['level']}")
            assert point.get_xdata()[0] == pytest.approx(r["auc"])
        else:
            assert f"— ({r['reason']})" in all_text
    for _, c in rows[rows["row"] == "comparison"].iterrows():
        t = by_gid(fig, f"subgroup-p:{c['factor']}:{c['level']}").get_text()
        if pd.notna(c["p"]):
            assert t == ("p < 0.001" if c["p"] < 0.001 else f"p = {c['p']:#.3g}")
        else:
            assert t.startswith("p —")
    assert by_gid(fig, "overall-auc").get_xdata()[0] == 0.9


# the information sets of the models the fixture predicts with (the registry's, where a model
# is registered: ceilings_figure reads the registry when no mapping is given)
INFO = {"Model-Clinical-LR": "clinical", "Model-CR": "clinical", "Model-DR": "image", "Model-CR-DR": "both"}


def test_ceilings_lines_are_the_bayes_optimal_aucs(tsvs):
    fig = F.ceilings_figure(tsvs["discrimination"], tsvs["ceilings"], center="TX", synthetic=True,
                            information_sets=INFO)
    for info, value in CEILINGS["auc"].items():
        line = by_gid(fig, f"ceiling:{info}")
        assert list(line.get_ydata()) == [value, value]
        assert line.get_color() == F.INFO_COLORS[info]
    disc = read(tsvs["discrimination"])
    for _, r in disc.iterrows():
        point = by_gid(fig, f"model-auc:{r['model']}")
        assert point.get_ydata()[0] == pytest.approx(r["auc"])
        assert point.get_color() == F.INFO_COLORS[INFO[r["model"]]]
    with pytest.raises(InputError, match="auc.image"):
        F.ceilings_figure(
            disc, {"auc": {"clinical": 0.7, "both": 0.8}}, center="TX", synthetic=True
        )


def test_training_curves_skip_missing_epochs_and_say_not_recorded():
    log = training_log()
    fig = F.training_curves_figure(log, model="Model-CR-DR", synthetic=False)
    dice = by_gid(fig, "train:seg_dice")
    assert np.allclose(dice.get_xdata(), log["epoch"][log["seg_dice"].notna()])
    auc = by_gid(fig, "train:inner_auc")
    assert list(auc.get_xdata()) == [3, 6, 9, 12]
    assert "Training — Model-CR-DR (12 epochs, 2.5 min)" in texts(fig)
    empty = log.assign(inner_auc=np.nan)
    fig = F.training_curves_figure(empty, model="Model-DR", synthetic=False)
    assert by_gid(fig, "not-recorded:Inner-split AUC").get_text() == "not recorded"
    with pytest.raises(InputError, match="seg_dice"):
        F.training_curves_figure(log.drop(columns="seg_dice"), model="m", synthetic=False)


def test_training_log_from_tsv(tmp_path):
    path = tmp_path / "training_log.tsv"
    training_log().to_csv(path, sep="\t", index=False, na_rep="NA")
    fig = F.training_curves_figure(path, model="Model-CR-DR", synthetic=True)
    assert list(by_gid(fig, "train:inner_auc").get_xdata()) == [3, 6, 9, 12]


def test_save_figure_writes_svg_and_300_dpi_png(results, tmp_path):
    from PIL import Image

    fig = F.decision_curve_figure(results["net_benefit"], center="TX", synthetic=True)
    paths = F.save_figure(fig, tmp_path / "fig4e")
    assert paths["svg"].read_bytes() == F.svg_bytes(fig)
    with Image.open(paths["png"]) as im:
        w, h = fig.get_size_inches()
        assert im.size == (round(w * 300), round(h * 300))


def test_missing_curve_data_is_an_input_error(results):
    from mtnet.stats.results import AUCResult

    bare = AUCResult(0.8, 0.7, 0.9, 50, 10, "python")  # a result without ROC points
    with pytest.raises(InputError, match="no ROC points"):
        F.roc_figure({"Model-X": bare}, center="TX", synthetic=False)
    with pytest.raises(InputError, match="no ROC curves"):
        F.roc_figure({}, center="TX", synthetic=False)


@pytest.mark.r
def test_figures_from_the_r_engine():
    r = typed_results("r", boot_n=100)
    fig = F.roc_figure(r["auc"], center="TX", synthetic=True)
    legend = texts(fig.axes[0].get_legend())
    for model, a in r["auc"].items():
        assert a.engine == "r" and not a.band.empty
        assert f"{model}: AUC {a.auc:.3f} [{a.ci_low:.3f}–{a.ci_high:.3f}]" in legend
    km = r["km_time_to_mvi"]
    fig = F.km_figure(
        km, cox=r["cox_time_to_mvi"], endpoint="time_to_mvi", center="TX", synthetic=True
    )
    for _, row in km.at_risk.iterrows():
        assert by_gid(fig, f"at-risk:{row['group']}:{row['time']:g}").get_text() == str(
            row["n_risk"]
        )
    assert SYNTHETIC_BANNER in texts(fig)
