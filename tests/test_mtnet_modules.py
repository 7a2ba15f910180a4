"""MTnet's modules, each alone on a tiny tensor (B, C, D, H, W), and the composed model."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import UNet

from mtnet.model.mtnet import network as N
from mtnet.model.mtnet.variants import PRESETS, VARIANTS, resolve

CH = (4, 8, 16)


def test_encoder_returns_every_level_and_the_bottleneck():
    enc = N.ImageEncoder(1, CH, num_res_units=1)
    feats = enc(torch.rand(2, 1, 16, 16, 16))
    assert [tuple(f.shape) for f in feats] == [(2, 4, 8, 8, 8), (2, 8, 4, 4, 4), (2, 16, 4, 4, 4)]


def test_decoder_gives_two_class_logits_on_the_crop_grid():
    enc, dec = N.ImageEncoder(1, CH), N.TumorDecoder(CH, 2)
    x = torch.rand(3, 1, 16, 24, 8)  # anisotropic grids work too
    assert tuple(dec(enc(x)).shape) == (3, 2, 16, 24, 8)


@pytest.mark.parametrize("channels,res_units", [((4, 8, 16), 1), ((4, 8, 16, 32), 2)])
def test_encoder_and_decoder_compute_what_monai_unet_computes(channels, res_units):
    """Same widths, depth and weights: MTnet's image path is MONAI's UNet, split in two."""
    torch.manual_seed(0)
    unet = UNet(3, 1, 2, channels, (2,) * (len(channels) - 1), num_res_units=res_units).eval()
    enc, dec = N.ImageEncoder(1, channels, res_units), N.TumorDecoder(channels, 2, res_units)
    ours = list(enc.parameters()) + list(dec.parameters())
    theirs = list(unet.parameters())
    assert [p.shape for p in ours] == [p.shape for p in theirs]
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            a.copy_(b)
    x = torch.rand(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(dec(enc.eval()(x)), unet(x), atol=1e-5)


def test_clinical_block_and_fusion_head_shapes():
    block = N.ClinicalBlock(7, (16, 8), dropout=0.1)
    assert tuple(block(torch.rand(5, 7)).shape) == (5, 8)
    assert tuple(N.FusionHead(24, 8)(torch.rand(5, 24)).shape) == (5,)
    assert tuple(N.FusionHead(24, 0)(torch.rand(5, 24)).shape) == (5,)


def test_pooling_global_and_inside_the_downsampled_tumor():
    feats = torch.zeros(2, 3, 4, 4, 4)
    feats[:, :, :2] = 1.0  # the upper half of the grid is 1
    mask = torch.zeros(2, 1, 16, 16, 16)
    mask[0, :, :8] = 1  # patient 0: tumor in the upper half
    mask[1, :, 8:, :4, :4] = 1  # patient 1: in the lower half
    assert torch.allclose(N.global_pool(feats), torch.full((2, 3), 0.5))
    pooled = N.masked_pool(feats, mask)
    assert torch.allclose(pooled[0], torch.ones(3)) and torch.allclose(pooled[1], torch.zeros(3))
    # a tumor smaller than one coarse voxel still weighs in (area downsampling)
    tiny = torch.zeros(1, 1, 16, 16, 16)
    tiny[0, 0, 1, 1, 1] = 1
    assert N.downsample_mask(tiny, (4, 4, 4)).sum() == pytest.approx(1 / 64)
    assert torch.isfinite(N.masked_pool(feats[:1], tiny)).all()


def test_region_stats_are_the_crop_tumor_and_shell_statistics():
    """Values chosen so each statistic is known: the tumor (a 2x2x2 feature block) holds 1s
    and 3s (mean 2, SD 1), its one-voxel shell 5, the rest of the crop 0."""
    feats = torch.zeros(1, 2, 6, 6, 6)
    feats[:, :, 1:5, 1:5, 1:5] = 5.0  # tumor block plus its shell
    block = torch.tensor([1.0, 3.0]).repeat(4).reshape(2, 2, 2)
    feats[:, :, 2:4, 2:4, 2:4] = block
    mask = torch.zeros(1, 1, 12, 12, 12)
    mask[:, :, 4:8, 4:8, 4:8] = 1  # exactly the feature block on the 2x finer grid
    stats = N.region_stats(feats, mask).reshape(1, len(N.STATS), 2)
    got = dict(zip(N.STATS, stats[0, :, 0].tolist()))
    assert got["crop_mean"] == pytest.approx((56 * 5 + 4 * 1 + 4 * 3) / 216)
    assert got["tumor_mean"] == pytest.approx(2.0)
    assert got["tumor_sd"] == pytest.approx(1.0, abs=1e-5)
    assert got["shell_mean"] == pytest.approx(5.0)
    # an empty tumor mask is NaN (never a silent zero)
    assert torch.isnan(N.region_stats(feats, torch.zeros_like(mask))[0, 2]).all()


def test_stats_pooling_batch_norm_and_feature_norm():
    cfg = N.MTnetConfig(clinical=False, channels=CH, pooling="stats", norm="batch",
                        feature_norm=True)
    assert cfg.needs_tumor_input and cfg.image_features == 4 * (1 + sum(CH))
    model = N.MTnet(cfg)
    assert any(isinstance(m, torch.nn.BatchNorm3d) for m in model.encoder.modules())
    assert not any(isinstance(m, torch.nn.InstanceNorm3d) for m in model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm3d) for m in model.decoder.modules())
    image = torch.rand(4, 1, 16, 16, 16)
    tumor = torch.zeros(4, 1, 16, 16, 16)
    tumor[:, :, 5:11, 5:11, 5:11] = 1
    assert tuple(model(image, tumor=tumor).logit.shape) == (4,)
    with pytest.raises(ValueError, match="tumor mask"):
        model(image)
    # the head sees standardised image features: mean 0 and SD 1 over the batch
    with torch.no_grad():
        pooled = torch.cat([N.region_stats(f, tumor) for f in [image, *model.encoder(image)]], 1)
        normed = model.feature_norm(pooled)
        # pool() is what the head reads (the linear probe of bench/bench_probe.py reads it)
        from_pool, levels = model.pool(image, tumor)
    assert torch.equal(from_pool, pooled) and len(levels) == len(CH)
    assert torch.allclose(normed.mean(0), torch.zeros(normed.shape[1]), atol=1e-4)
    with pytest.raises(ValueError, match="norm"):
        N.MTnetConfig(n_factors=3, norm="group")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_is_one_class_configured(variant):
    r = resolve(variant, {"size": "tiny"})
    cfg = N.MTnetConfig(**r["network"], n_factors=6 if r["network"]["clinical"] else 0)
    model = N.MTnet(cfg)
    image, clinical = torch.rand(2, 1, 16, 16, 16), torch.rand(2, 6)
    out = model(image if cfg.image else None, clinical if cfg.clinical else None,
                return_features=True)
    assert tuple(out.logit.shape) == (2,)
    assert hasattr(model, "encoder") == cfg.image and hasattr(model, "clinical_block") == cfg.clinical
    if cfg.segmentation:
        assert tuple(out.segmentation.shape) == (2, 2, 16, 16, 16)
    else:
        assert out.segmentation is None and not hasattr(model, "decoder")
    if cfg.image:
        assert tuple(out.features.shape) == (2, 4, 8, 8, 8)


def test_mask_channel_and_tumor_pooling_options_need_the_mask():
    cfg = N.MTnetConfig(clinical=False, channels=CH, mask_channel=True, pooling="tumor")
    model = N.MTnet(cfg)
    assert model.encoder.levels[0].conv.unit0.conv.in_channels == 2
    image = torch.rand(2, 1, 16, 16, 16)
    tumor = torch.zeros(2, 1, 16, 16, 16, dtype=torch.uint8)
    tumor[:, :, 4:10, 4:10, 4:10] = 1
    assert tuple(model(image, tumor=tumor).logit.shape) == (2,)
    with pytest.raises(ValueError, match="tumor mask"):
        model(image)
    # a uint8 mask pools like its float copy (the crops' masks are uint8)
    feats = model.encoder(torch.cat([image, tumor.float()], 1))[-1]
    assert torch.equal(N.masked_pool(feats, tumor), N.masked_pool(feats, tumor.float()))


def test_config_is_checked_and_round_trips():
    with pytest.raises(ValueError, match="n_factors"):
        N.MTnetConfig(clinical=True, n_factors=0)
    with pytest.raises(ValueError, match="segmentation needs the image"):
        N.MTnetConfig(image=False, segmentation=True, n_factors=3)
    with pytest.raises(ValueError, match="pooling"):
        N.MTnetConfig(n_factors=3, pooling="max")
    cfg = N.MTnetConfig(n_factors=3, channels=CH, pooling="tumor")
    assert N.MTnetConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.divisor == 4


def test_no_device_or_dtype_is_hard_coded():
    """The model runs wherever its parameters are: on the meta device (no data) and in
    float64, which fails if any module creates a tensor on a fixed device or dtype."""
    cfg = N.MTnetConfig(n_factors=3, channels=CH, pooling="tumor", mask_channel=True)
    with torch.device("meta"):
        model = N.MTnet(cfg)
        out = model(torch.rand(2, 1, 16, 16, 16), torch.rand(2, 3),
                    torch.ones(2, 1, 16, 16, 16), return_features=True)
    assert out.logit.device.type == "meta" and out.segmentation.device.type == "meta"
    model = N.MTnet(cfg).double()
    out = model(torch.rand(1, 1, 16, 16, 16, dtype=torch.float64),
                torch.rand(1, 3, dtype=torch.float64), torch.ones(1, 1, 16, 16, 16))
    assert out.logit.dtype == torch.float64


def test_presets_fit_their_grids():
    for size, p in PRESETS.items():
        divisor = 2 ** (len(p["channels"]) - 1)
        assert all(g % divisor == 0 for g in p["grid"]), size
        assert all(g // divisor >= 2 for g in p["grid"]), size  # instance norm needs > 1 voxel
