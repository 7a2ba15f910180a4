# The report's figures, tables, checklist and provenance: drawn from the TSVs of the stats
# rules (plotting apart from computing), each wrapped in report(...) with its caption
# (src/mtnet/report/captions/*.rst: the method inline, then the center's note).
# Labels: "result" orders and names the items; a second label ("shown as") only where its
# values are not two, half and half: Snakemake turns such a label into a toggle, and a
# two-item group with one shows nothing (a JavaScript error).


rule figures:
    """ROC, calibration, decision curve, Kaplan-Meier and subgroup figures of one
    evaluated center (paper Fig. 4, 6, S2, S3)."""
    input:
        unpack(get_center_stats),
    output:
        roc=report(
            "results/figures/{center}/roc.svg",
            caption="../../src/mtnet/report/captions/roc.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "02 ROC curves (Fig. 4A-B)", "shown as": "figure"},
        ),
        calibration=report(
            "results/figures/{center}/calibration.svg",
            caption="../../src/mtnet/report/captions/calibration.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "05 Calibration plot (Fig. 4C-D)", "shown as": "figure"},
        ),
        decision_curve=report(
            "results/figures/{center}/decision_curve.svg",
            caption="../../src/mtnet/report/captions/decision_curve.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "06 Decision curve (Fig. 4E)", "shown as": "figure"},
        ),
        km_youden_time_to_mvi=report(
            "results/figures/{center}/km_youden_time_to_mvi.svg",
            caption="../../src/mtnet/report/captions/km.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={
                "result": "08 Time to MVI by Youden risk group (Fig. 6)",
                "shown as": "figure",
            },
        ),
        km_youden_os=report(
            "results/figures/{center}/km_youden_os.svg",
            caption="../../src/mtnet/report/captions/km.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={
                "result": "09 Overall survival by Youden risk group (Fig. 6)",
                "shown as": "figure",
            },
        ),
        km_h_score_median_time_to_mvi=report(
            "results/figures/{center}/km_h_score_median_time_to_mvi.svg",
            caption="../../src/mtnet/report/captions/km.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={
                "result": "10 Time to MVI by H-score group (Fig. S3)",
                "shown as": "figure",
            },
        ),
        km_h_score_median_os=report(
            "results/figures/{center}/km_h_score_median_os.svg",
            caption="../../src/mtnet/report/captions/km.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={
                "result": "11 Overall survival by H-score group (Fig. S3)",
                "shown as": "figure",
            },
        ),
        forest=report(
            "results/figures/{center}/forest.svg",
            caption="../../src/mtnet/report/captions/forest.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "12 Subgroup AUCs (Fig. S2)", "shown as": "figure"},
        ),
    log:
        "results/logs/figures/{center}.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        synthetic=get_synthetic,
        split=get_evaluated_split,
        note=get_center_note,
    script:
        "../scripts/figures.py"


rule stats_tables:
    """The journal-formatted tables of one evaluated center, as HTML pages (the report
    shows them on screen)."""
    input:
        unpack(get_center_stats),
    output:
        discrimination=report(
            "results/tables/{center}/discrimination.html",
            caption="../../src/mtnet/report/captions/discrimination.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "01 Discrimination (table)", "shown as": "table"},
        ),
        model_comparison=report(
            "results/tables/{center}/model_comparison.html",
            caption="../../src/mtnet/report/captions/model_comparison.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={
                "result": "03 Model comparison: DeLong, NRI, IDI (table)",
                "shown as": "table",
            },
        ),
        calibration_summary=report(
            "results/tables/{center}/calibration_summary.html",
            caption="../../src/mtnet/report/captions/calibration_summary.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "04 Calibration (table)", "shown as": "table"},
        ),
        risk_groups=report(
            "results/tables/{center}/risk_groups.html",
            caption="../../src/mtnet/report/captions/risk_groups.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={"result": "07 Risk groups (table)", "shown as": "table"},
        ),
    log:
        "results/logs/stats_tables/{center}.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        synthetic=get_synthetic,
        split=get_evaluated_split,
        note=get_center_note,
    script:
        "../scripts/stats_tables.py"


rule ceilings:
    """A synthetic center's model AUCs against the Bayes-optimal ceilings of its generator."""
    input:
        unpack(get_ceilings_input),
    output:
        report(
            "results/figures/{center}/ceilings.svg",
            caption="../../src/mtnet/report/captions/ceilings.rst",
            category="5. Statistics",
            subcategory="{center}",
            labels={
                "result": "13 Model AUCs against the Bayes ceilings (synthetic)",
                "shown as": "figure",
            },
        ),
    log:
        "results/logs/ceilings/{center}.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        split=get_evaluated_split,
        note=get_center_note,
    script:
        "../scripts/ceilings.py"


rule table1_html:
    """Table 1 as an HTML page (the TSV stays for download)."""
    input:
        "results/stats/table1.tsv",
    output:
        report(
            "results/tables/table1.html",
            caption="../../src/mtnet/report/captions/table1.rst",
            category="5. Statistics",
            subcategory="Table 1",
            labels={"result": "Table 1 (table)"},
        ),
    log:
        "results/logs/table1_html/all.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        synthetic=any(is_synthetic(c) for c in CENTERS),
        note=get_table1_note,
    script:
        "../scripts/table1_html.py"


rule training_figure:
    """A model's training log: its epochs, or the tuning path of its penalty."""
    input:
        unpack(get_training_figure_input),
    output:
        report(
            "results/models/{model}/training.svg",
            caption="../report/training_figure.rst",
            category="4. Models",
            subcategory="{model}",
        ),
    log:
        "results/logs/training_figure/{model}.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        synthetic=models_synthetic(),
        note=get_models_note,
    script:
        "../scripts/training_figure.py"


rule tumor_montage:
    """Tumor, peritumoral ring and the MTnet ROI crop of a center's first patients."""
    input:
        unpack(get_montage_input),
    output:
        report(
            "results/tumor/{center}/roi_montage.png",
            caption="../report/tumor_montage.rst",
            category="3. Tumor",
            subcategory="{center}",
        ),
    log:
        "results/logs/tumor_montage/{center}.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        synthetic=get_synthetic,
        note=get_center_note,
    script:
        "../scripts/tumor_montage.py"


rule checklist:
    """The TRIPOD+AI checklist filled from this run; the items an author must write are
    listed as such."""
    input:
        unpack(get_checklist_input),
    output:
        tsv=report(
            "results/checklist/tripod_ai.tsv",
            caption="../report/checklist_tsv.rst",
            category="6. Reporting checklist",
            labels={"result": "TRIPOD+AI checklist (raw TSV, download)"},
        ),
        html=report(
            "results/checklist/tripod_ai.html",
            caption="../report/checklist.rst",
            category="6. Reporting checklist",
            labels={"result": "TRIPOD+AI checklist (table)"},
        ),
    log:
        "results/logs/checklist/all.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        config=config,
        centers=CENTERS,
        eval_centers=EVAL_CENTERS,
        models=MODELS,
    script:
        "../scripts/checklist.py"


rule manifest:
    """Provenance, written last: the sha256 of every input and output, the config, the
    code, package versions, seeds, hardware and rule times (mtnet audit checks it)."""
    input:
        get_provenance_input,
    output:
        manifest=report(
            "results/provenance/manifest.json",
            caption="../report/manifest.rst",
            category="7. Provenance",
            labels={"result": "Manifest (JSON, download)"},
        ),
        summary=report(
            "results/provenance/summary.html",
            caption="../report/manifest_summary.rst",
            category="7. Provenance",
            labels={"result": "Provenance summary (page)"},
        ),
    log:
        "results/logs/manifest/all.log",
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        config=config,
        configfiles=get_config_files(),
        inputs=get_run_inputs(),
    script:
        "../scripts/manifest.py"
