rule synth:
    """A synthetic center, written to disk exactly as a hospital's data (ingestion reads it)."""
    output:
        data=directory("results/synth/{center}/data"),
        truth=directory("results/synth/{center}/truth"),
    log:
        "results/logs/synth/{center}.log",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=get_synth_settings,
        seed=config["seed"],
    script:
        "../scripts/synth.py"
