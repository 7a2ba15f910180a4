"""Everything that is not a rule: config validation, center lists, every input function.

Rules never compute paths inline; they call the get_* functions below.
"""

import sys
from pathlib import Path

# The workflow and its scripts (which inherit the environment, also in conda envs and on
# cluster nodes) import the mtnet package of this checkout.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)

from mtnet import config as mtconfig  # noqa: E402
from mtnet.io import manifest as delivery  # noqa: E402
from mtnet.model import registry  # noqa: E402

mtconfig.export_package_path(SRC)

# Snakemake's YAML loader keeps the last of duplicated keys; re-read to refuse them.
mtconfig.check_files(
    list(workflow.configfiles)
    + list(getattr(workflow, "overwrite_configfiles", None) or [])
)
mtconfig.validate_config(config)


CENTERS = list(config["centers"])
TRAIN_CENTERS = mtconfig.train_centers(config)
EXTERNAL_CENTERS = mtconfig.external_centers(config)
# Pooled training centers are evaluated like a center of their own (paper: training dataset).
LOCO = config["validation"]["scheme"] == mtconfig.LOCO
# the centers whose patients fit the models (every center under leave-one-center-out, where
# each is predicted by the models fitted on the others), and the centers evaluated
MODEL_CENTERS = CENTERS if LOCO else TRAIN_CENTERS
EVAL_CENTERS = (
    CENTERS + [mtconfig.POOLED_LOCO]
    if LOCO
    else EXTERNAL_CENTERS + list(mtconfig.POOLED)
)
MODELS = list(config["models"])


wildcard_constraints:
    center="[A-Za-z][A-Za-z0-9_-]*",
    model="Model-[A-Za-z0-9-]+",


def center_config(center):
    return config["centers"][center]


def is_synthetic(center):
    return center_config(center)["source"] == "synthetic"


def get_center_role(wildcards):
    return center_config(wildcards.center)["role"]


def get_prediction_role(wildcards):
    """How a center is predicted: by the model fitted on the training centers (its role),
    or, under leave-one-center-out, by the models fitted without it (held_out)."""
    return "held_out" if LOCO else get_center_role(wildcards)


def stage_settings(stage):
    """A stage's config section for its rule's params, less `threads` (the rule's
    threads: how many patients run side by side changes no output, so no rerun)."""
    return {k: v for k, v in config[stage].items() if k != "threads"}


# ------------------------------------------------------------------ synth and ingest


def get_synth_settings(wildcards):
    """Generator settings of a synthetic center: its entry plus its name and role."""
    c = center_config(wildcards.center)
    if c["source"] != "synthetic":
        raise ValueError(f"center {wildcards.center} is not synthetic")
    return {"center": wildcards.center, "role": c["role"], **c["synthetic"]}


def get_ingest_settings(wildcards):
    """The center's entry (its formats, phase rules, segment) and the ingest section."""
    return {
        "center": dict(center_config(wildcards.center)),
        "ingest": stage_settings("ingest"),
    }


def get_ingest_input(wildcards):
    """A synthetic center is read from the generator's folder, exactly like a hospital's; the
    delivery's manifest makes a file replaced inside a folder rerun the center."""
    inputs = dict(delivery_paths(wildcards.center))
    inputs["manifest"] = delivery_manifest(wildcards.center)
    return inputs


def ingested(center, what):
    return f"results/ingest/{center}/{what}"


DELIVERY_KEYS = ("images", "tumor_masks", "liver_masks", "clinical", "clinical_mapping")
_MANIFESTS_REFRESHED = set()


def delivery_paths(center):
    """The files and folders of a center's delivery, keyed as rule ingest's inputs."""
    c = center_config(center)
    if c["source"] == "synthetic":
        return {"data": f"results/synth/{center}/data"}
    paths = {k: c[k] for k in DELIVERY_KEYS if k in c}
    if "overrides" in c.get("phase", {}):
        paths["phase_overrides"] = c["phase"]["overrides"]
    return paths


def delivery_manifest(center):
    """results/ingest/{center}/delivery.sha256: refreshed once per planning wherever the
    delivery exists, rewritten only when a file's content changed (src/mtnet/io/manifest.py);
    a synthetic center's first one is written by rule delivery_manifest after rule synth.
    """
    out = ingested(center, "delivery.sha256")
    if center not in _MANIFESTS_REFRESHED:
        _MANIFESTS_REFRESHED.add(center)
        paths = delivery_paths(center)
        if all(Path(p).exists() for p in paths.values()):
            delivery.refresh(paths, out, manifest_cache(center))
    return out


def manifest_cache(center):
    return f".snakemake/mtnet/manifests/{center}.json"


def get_manifest_input(wildcards):
    """The generator's folder of a synthetic center (a hospital's delivery is no job's output)."""
    center = wildcards.center
    return list(delivery_paths(center).values()) if is_synthetic(center) else []


def get_delivery_paths(wildcards):
    return delivery_paths(wildcards.center)


def get_manifest_cache(wildcards):
    return manifest_cache(wildcards.center)


def get_identity_input(wildcards):
    """A center's fingerprints and those of every (other) training center."""
    return {
        "own": ingested(wildcards.center, "fingerprints.tsv"),
        "others": [ingested(c, "fingerprints.tsv") for c in identity_others(wildcards)],
    }


def identity_others(wildcards):
    return [c for c in TRAIN_CENTERS if c != wildcards.center]


def get_identity_roles(wildcards):
    return {c: center_config(c)["role"] for c in identity_others(wildcards)}


# ------------------------------------------------------------------ liver and tumor


def liver_backend(center):
    return mtconfig.liver_backend(config, center)


def get_liver_backend(wildcards):
    return liver_backend(wildcards.center)


def get_liver_input(wildcards):
    """Images, the center's own masks (possibly none), its tumor masks and, for QC only, a
    reference."""
    center = wildcards.center
    inputs = {
        "images": ingested(center, "images"),
        "provided": ingested(center, "liver"),
        # an automatic liver mask is completed with the lesions that touch it
        "tumor": ingested(center, "tumor"),
    }
    if liver_backend(center) == "unet":
        inputs["model"] = "results/liver/unet/model.pt"
    if is_synthetic(center):
        # the generator's true liver masks: read for the Dice in the QC, never for fitting
        inputs["truth"] = f"results/synth/{center}/truth"
    return inputs


def get_unet_training_input(wildcards):
    """The liver UNet learns from every center that has its own liver masks."""
    sources = [c for c in CENTERS if liver_backend(c) == "provided"]
    return {
        "images": [ingested(c, "images") for c in sources],
        "masks": [ingested(c, "liver") for c in sources],
    }


def get_tumor_input(wildcards):
    center = wildcards.center
    return {
        "images": ingested(center, "images"),
        "tumor": ingested(center, "tumor"),
        "clinical": ingested(center, "clinical.tsv"),
        "liver": f"results/liver/{center}/masks",
    }


def workflow_file(path):
    """A relative path from the working directory, else from the workflow's own folder (the
    files the workflow ships, such as config/radiomics.yaml, also under `snakemake -d`).
    """
    if Path(path).is_absolute() or Path(path).exists():
        return path
    return str(Path(workflow.basedir) / path)


def get_features_input(wildcards):
    center = wildcards.center
    return {
        "images": ingested(center, "images"),
        "tumor": ingested(center, "tumor"),
        "rings": f"results/tumor/{center}/rings",
        "lesions": f"results/tumor/{center}/lesions.tsv",
        "params": workflow_file(config["features"]["params"]),
    }


# ------------------------------------------------------------------ models and statistics


def get_clinical_tables(centers):
    return [ingested(c, "clinical.tsv") for c in centers]


def get_training_tables(wildcards):
    return get_clinical_tables(MODEL_CENTERS)


SPLIT_FILE = "results/splits/folds.tsv"


def model_inputs(model, centers, training=True):
    """What a registered model reads of the stages before it, for these centers (the split
    file only for training)."""
    paths = {
        "clinical": get_clinical_tables(centers),
        "roi": [f"results/tumor/{c}/roi" for c in centers],
        "features": [f"results/features/{c}/radiomics.tsv" for c in centers],
        "splits": SPLIT_FILE,
    }
    kinds = [k for k in registry.get(model).inputs if training or k != "splits"]
    inputs = {kind: paths[kind] for kind in kinds}
    if "roi" in inputs:  # a crop's HU are read from the ingested CT it refers to
        inputs["roi_ct"] = [ingested(c, "images") for c in centers]
    return inputs


def fold_numbers():
    """The folds of the split file: validation.folds, or one per center (leave-one-out)."""
    return range(1, (len(MODEL_CENTERS) if LOCO else config["validation"]["folds"]) + 1)


def get_model_training_input(wildcards):
    """The training centers' inputs of the model (its registry entry says which); for a
    family trained fold by fold, its fold jobs' folders instead of the images."""
    inputs = model_inputs(wildcards.model, MODEL_CENTERS)
    if registry.get(wildcards.model).fold_jobs:
        inputs.pop("roi", None)
        inputs.pop("roi_ct", None)
        inputs["folds"] = [
            f"results/models/{wildcards.model}/folds/{k}" for k in fold_numbers()
        ]
    return inputs


def get_fold_training_input(wildcards):
    return model_inputs(wildcards.model, MODEL_CENTERS)


NETWORK_MODELS = "|".join(m for m in MODELS if registry.get(m).fold_jobs) or "(?!x)x"


def get_model_prediction_input(wildcards):
    """The fitted model and the center's inputs; a center's patients are predicted only once
    they were shown to be no training patient's (rule identity)."""
    inputs = {
        k: v[0]
        for k, v in model_inputs(wildcards.model, [wildcards.center], False).items()
    }
    return {
        "model": f"results/models/{wildcards.model}/model",
        **inputs,
        "identity": ingested(wildcards.center, "identity.tsv"),
    }


def get_stage_settings():
    """The settings of the stages before the models, recorded with each model (a new
    patient is prepared as its training patients were)."""
    return {k: config[k] for k in ("ingest", "liver", "tumor", "features")}


def get_model_settings(wildcards):
    """The config section the model's family reads (none: an empty mapping)."""
    section = registry.get(wildcards.model).settings
    return dict(config.get(section, {})) if section else {}


def pooled_members(center):
    if center == mtconfig.POOLED_LOCO:
        return CENTERS
    return TRAIN_CENTERS if center in mtconfig.POOLED else [center]


def get_evaluated_split(wildcards):
    """The predictions a center is evaluated on: out-of-fold or apparent for the pooled
    training centers, external otherwise."""
    return mtconfig.POOLED.get(wildcards.center, "external")


def predictions_of(centers):
    return [f"results/predictions/{c}/{model}.tsv" for model in MODELS for c in centers]


def get_predictions(wildcards):
    """Every configured model's predictions for a center (or the pooled training centers)."""
    return predictions_of(pooled_members(wildcards.center))


def get_training_predictions(wildcards):
    """Risk-group thresholds (Youden, H-score median) are fixed on the training centers
    (leave-one-center-out: on the other centers' held-out predictions)."""
    if LOCO:
        return predictions_of([c for c in CENTERS if c != wildcards.center] or CENTERS)
    return predictions_of(TRAIN_CENTERS)


def get_member_tables(wildcards):
    """Clinical tables of the evaluated patients, for the subgroup analyses."""
    return get_clinical_tables(pooled_members(wildcards.center))


SYNTHETIC_EXTERNAL = [c for c in EXTERNAL_CENTERS if is_synthetic(c)]


def get_validity_input(wildcards):
    """The synthetic external centers' truth and every model's predictions there."""
    return {
        "truth": [f"results/synth/{c}/truth" for c in SYNTHETIC_EXTERNAL],
        "predictions": predictions_of(SYNTHETIC_EXTERNAL),
    }


# ------------------------------------------------------------------ report

# the stats rule's tables and the curve tables the figures draw (mtnet.stats.analyses
# COLUMNS and CURVE_COLUMNS; tests/test_report_workflow.py keeps them equal)
STATS_TABLES = (
    "discrimination",
    "delong",
    "nri_idi",
    "calibration",
    "decision_curve",
    "subgroups",
    "survival",
)
CURVE_TABLES = (
    "roc_curves",
    "roc_bands",
    "calibration_curves",
    "km_curves",
    "km_at_risk",
)
# the report rules' items of an evaluated center (mtnet.report.render, kept equal by a test;
# not imported here: it imports matplotlib, and every snakemake call reads this file)
CENTER_FIGURES = (
    "roc",
    "calibration",
    "decision_curve",
    "km_youden_time_to_mvi",
    "km_youden_os",
    "km_h_score_median_time_to_mvi",
    "km_h_score_median_os",
    "forest",
)
CENTER_TABLES = (
    "discrimination",
    "model_comparison",
    "calibration_summary",
    "risk_groups",
)
MANIFEST = "results/provenance/manifest.json"


def center_synthetic(center):
    """An evaluated center is synthetic when any center it pools is."""
    return any(is_synthetic(c) for c in pooled_members(center))


def get_synthetic(wildcards):
    return center_synthetic(wildcards.center)


def get_center_note(wildcards):
    """The sentence every caption of this center ends with: whose data (synthetic or a
    hospital's), and for the pooled training centers out-of-fold or apparent."""
    from mtnet.report.captions import center_note

    center = wildcards.center
    if LOCO:
        split = "loco" if center == mtconfig.POOLED_LOCO else "held_out"
    elif center in mtconfig.POOLED:
        split = mtconfig.POOLED[center]
    else:
        split = "external" if center_config(center)["role"] == "external" else "train"
    return center_note(
        center,
        synthetic=center_synthetic(center),
        split=split,
        members=pooled_members(center),
    )


def models_synthetic():
    """The models are fitted on the training centers: synthetic when any of them is."""
    return any(is_synthetic(c) for c in TRAIN_CENTERS)


def get_models_note(wildcards):
    from mtnet.report.captions import center_note

    return center_note(
        wildcards.model,
        synthetic=models_synthetic(),
        split="models",
        members=TRAIN_CENTERS,
    )


def stats_tables_of(center):
    return {
        name: f"results/stats/{center}/{name}.tsv"
        for name in STATS_TABLES + CURVE_TABLES
    }


def get_center_stats(wildcards):
    """Every stats table of an evaluated center (the figures and HTML tables read them)."""
    return stats_tables_of(wildcards.center)


def ceiling_centers():
    """Evaluated centers with a Bayes ceiling: every center they pool is synthetic."""
    return [c for c in EVAL_CENTERS if all(is_synthetic(m) for m in pooled_members(c))]


def get_ceilings_input(wildcards):
    """The center's model AUCs and its generator's ceilings (truth/ceilings.json): the
    report reads truth/, the models never do."""
    center = wildcards.center
    return {
        "discrimination": f"results/stats/{center}/discrimination.tsv",
        # the generator's truth folders (a directory output: ceilings.json is read in it)
        "truth": [f"results/synth/{c}/truth" for c in pooled_members(center)],
    }


def get_training_figure_input(wildcards):
    model = wildcards.model
    return {
        "log": f"results/models/{model}/training_log.tsv",
        "model": f"results/models/{model}/model",
    }


def get_montage_input(wildcards):
    center = wildcards.center
    return {
        "images": ingested(center, "images"),
        "tumor": ingested(center, "tumor"),
        "rings": f"results/tumor/{center}/rings",
        "roi": f"results/tumor/{center}/roi",
    }


def figure_outputs(center):
    return [f"results/figures/{center}/{name}.svg" for name in CENTER_FIGURES]


def report_targets():
    """What the report rules write: per evaluated center its figures and HTML tables (and
    the ceilings where synthetic), Table 1, each model's training figure, each center's
    tumor montage, the checklist."""
    out = []
    for center in EVAL_CENTERS:
        out += figure_outputs(center)
        out += [f"results/tables/{center}/{name}.html" for name in CENTER_TABLES]
    out += [f"results/figures/{center}/ceilings.svg" for center in ceiling_centers()]
    out.append("results/tables/table1.html")
    out += [f"results/models/{model}/training.svg" for model in MODELS]
    out += [f"results/tumor/{center}/roi_montage.png" for center in CENTERS]
    out += ["results/checklist/tripod_ai.tsv", "results/checklist/tripod_ai.html"]
    return out


def get_checklist_input(wildcards):
    """What the TRIPOD+AI checklist reports on: every center's ingestion (clinical table,
    exclusions, missing columns), every model, every evaluated center's statistics."""
    return {
        "clinical": get_clinical_tables(CENTERS),
        "exclusions": [ingested(c, "exclusions.tsv") for c in CENTERS],
        "missing": [ingested(c, "missing_columns.tsv") for c in CENTERS],
        "models": [f"results/models/{m}/model" for m in MODELS],
        "summaries": [f"results/models/{m}/summary.tsv" for m in MODELS],
        "discrimination": [
            f"results/stats/{c}/discrimination.tsv" for c in EVAL_CENTERS
        ],
        "calibration": [f"results/stats/{c}/calibration.tsv" for c in EVAL_CENTERS],
        "subgroups": [f"results/stats/{c}/subgroups.tsv" for c in EVAL_CENTERS],
        "table1": "results/stats/table1.tsv",
        "folds": SPLIT_FILE,
    }


def get_table1_note(wildcards):
    synthetic = [c for c in CENTERS if is_synthetic(c)]
    if not synthetic:
        return "Hospitals' data (no synthetic center)."
    return (
        f"SYNTHETIC DATA: {', '.join(synthetic)} are generated centers, not patients "
        "(the table carries the banner)."
    )


def get_config_files():
    """The config files of this run, as given to snakemake."""
    files = list(workflow.configfiles) + list(
        getattr(workflow, "overwrite_configfiles", None) or []
    )
    return list(dict.fromkeys(str(p) for p in files))


def get_run_inputs():
    """The files the run reads from outside results/: each hospital's images, masks,
    clinical table and mapping, and the radiomics parameters (a synthetic center is made
    from the config's seed by the code, both recorded apart)."""
    inputs = {}
    for center in CENTERS:
        c = center_config(center)
        if c["source"] == "synthetic":
            continue
        for key in (
            "images",
            "tumor_masks",
            "liver_masks",
            "clinical",
            "clinical_mapping",
        ):
            if key in c:
                inputs[f"{center}.{key}"] = c[key]
        if "overrides" in c.get("phase", {}):
            inputs[f"{center}.phase_overrides"] = c["phase"]["overrides"]
    inputs["features.params"] = workflow_file(config["features"]["params"])
    return inputs


def get_provenance_input(wildcards):
    """Everything else the run makes: the manifest is written last."""
    return [path for path in get_final_outputs() if path != MANIFEST]


# ------------------------------------------------------------------ targets


def get_final_outputs():
    outputs = []
    for center in CENTERS:
        outputs += [
            ingested(center, "qc.tsv"),
            ingested(center, "identity.tsv"),
            f"results/liver/{center}/qc.tsv",
            f"results/tumor/{center}/lesions.tsv",
        ]
        outputs += [f"results/predictions/{center}/{model}.tsv" for model in MODELS]
    outputs += [f"results/stats/{center}/discrimination.tsv" for center in EVAL_CENTERS]
    outputs.append("results/stats/table1.tsv")
    if SYNTHETIC_EXTERNAL:
        outputs.append("results/stats/validity.tsv")
    outputs += report_targets()
    outputs.append(MANIFEST)
    return outputs
