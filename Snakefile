# MTnet-MVI: predicting future macrovascular invasion in HCC from CT, one hospital at a time.
# Fu S, Lai H, Li Q, et al. EClinicalMedicine 2021;42:101201 (doi:10.1016/j.eclinm.2021.101201)
#
#   snakemake --cores 2                      # the default config (synthetic demo cohort)
#   snakemake --configfile config/tiny.yaml --replace-workflow-config --cores 2
#   snakemake --profile slurm                # on a Slurm cluster
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# config validation, center lists and every input function
include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/liver.smk"
include: "workflow/rules/tumor.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/stats.smk"
# figures, HTML tables, the TRIPOD+AI checklist and the provenance manifest
include: "workflow/rules/report.smk"


# light steps (seconds, a few MB) run on the submit host, not as Slurm jobs (slurm/config.yaml)
localrules:
    splits,
    delivery_manifest,
    identity,
    table1,
    validity,
    train_model,
    predict_model,
    figures,
    stats_tables,
    ceilings,
    table1_html,
    training_figure,
    tumor_montage,
    checklist,
    manifest,


rule all:
    default_target: True
    input:
        get_final_outputs(),
