rule train_liver_unet:
    """MONAI 3D UNet for the liver, trained on every center that has liver masks."""
    input:
        unpack(get_unet_training_input),
    output:
        model="results/liver/unet/model.pt",
        heldout=report(
            "results/liver/unet/heldout_dice.tsv",
            caption="../report/liver_unet.rst",
            category="2. Liver",
        ),
    log:
        "results/logs/train_liver_unet/all.log",
    conda:
        "../../envs/model.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        settings=config["liver"]["unet"],
        seed=config["seed"],
    script:
        "../scripts/train_liver_unet.py"


rule liver:
    """Liver mask per patient with the center's backend, and its QC."""
    input:
        unpack(get_liver_input),
    output:
        masks=directory("results/liver/{center}/masks"),
        qc=report(
            "results/liver/{center}/qc.tsv",
            caption="../report/liver_qc.rst",
            category="2. Liver",
            subcategory="{center}",
        ),
        montage=report(
            "results/liver/{center}/montage.png",
            caption="../report/liver_montage.rst",
            category="2. Liver",
            subcategory="{center}",
        ),
    log:
        "results/logs/liver/{center}.log",
    conda:
        "../../envs/model.yaml"
    threads: config["liver"]["threads"]
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        backend=get_liver_backend,
        settings=stage_settings("liver"),
    script:
        "../scripts/liver.py"
