"""MTnet's modules (paper §2.7, Fig. 2) and the one model class composing them.

Shapes at module boundaries: images ``(B, C, D, H, W)`` (D, H, W = the crop's z, y, x),
encoded factors ``(B, F)``, logits ``(B,)``. Nothing here names a device or a dtype: the
caller moves the model and its inputs (``model.to(device)``) and chooses autocast.

The image path mirrors MONAI's ``UNet`` (residual units, strided convolutions down,
transposed convolutions up, skip concatenation): with the same widths and depth, an
:class:`ImageEncoder` followed by a :class:`TumorDecoder` computes exactly what
``monai.networks.nets.UNet`` computes (tests/test_mtnet_modules.py loads one's weights into
the other), so MTnet's cost over a plain UNet is only the pooling and the small heads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

POOLINGS = ("global", "tumor", "stats")
NORMS = ("instance", "batch")


@dataclass
class MTnetConfig:
    """What the network is made of.

    ``image``/``clinical``/``segmentation`` switch the three blocks of Fig. 2 (A+B, C, B);
    the variants are settings of these (:mod:`mtnet.model.mtnet.variants`). ``channels`` are
    the widths of the encoder's levels, top first (the last is the bottleneck); every level
    but the bottleneck halves the grid, so the crop grid must be divisible by
    ``2 ** (len(channels) - 1)``. ``mask_channel``: the tumor mask enters as a second input
    channel. ``pooling``: ``global`` averages the bottleneck over the whole crop, ``tumor``
    averages it inside the tumor mask (area-downsampled to the bottleneck grid), ``stats``
    takes :func:`region_stats` of the input and of every encoder level (the mean over the
    crop, the mean and SD inside the tumor, the mean in its one-voxel shell).
    ``norm``: the encoder's and decoder's feature normalisation (``instance``, MONAI's
    UNet default, or ``batch``). ``feature_norm``: the pooled image features are
    standardised (a batch norm without affine parameters) before the fusion head.
    ``hscore_level``: the encoder level whose features define the H-score
    (:mod:`mtnet.model.mtnet.hscore`).
    """

    image: bool = True
    clinical: bool = True
    segmentation: bool = True
    n_factors: int = 0
    channels: tuple[int, ...] = (8, 16, 32, 64)
    num_res_units: int = 1
    clinical_hidden: tuple[int, int] = (32, 16)
    head_hidden: int = 16
    dropout: float = 0.2
    mask_channel: bool = False
    pooling: str = "global"
    norm: str = "instance"
    feature_norm: bool = False
    hscore_level: int = 0

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        self.clinical_hidden = tuple(int(c) for c in self.clinical_hidden)
        if not (self.image or self.clinical):
            raise ValueError("MTnetConfig: at least one of image and clinical must be on")
        if self.segmentation and not self.image:
            raise ValueError("MTnetConfig: segmentation needs the image block")
        if self.clinical and self.n_factors < 1:
            raise ValueError(f"MTnetConfig: the clinical block needs n_factors >= 1, got {self.n_factors}")
        if len(self.channels) < 2:
            raise ValueError(f"MTnetConfig: channels needs at least 2 levels, got {self.channels}")
        if len(self.clinical_hidden) != 2:
            raise ValueError("MTnetConfig: clinical_hidden is the width of two layers")
        if self.pooling not in POOLINGS:
            raise ValueError(f"MTnetConfig: pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.norm not in NORMS:
            raise ValueError(f"MTnetConfig: norm must be one of {NORMS}, got {self.norm!r}")
        if not 0 <= self.hscore_level < len(self.channels):
            raise ValueError(f"MTnetConfig: hscore_level must index channels, got {self.hscore_level}")

    @property
    def in_channels(self) -> int:
        return 2 if self.mask_channel else 1

    @property
    def needs_tumor_input(self) -> bool:
        """Whether forward() needs the tumor mask (input channel or pooling mask)."""
        return self.image and (self.mask_channel or self.pooling in ("tumor", "stats"))

    @property
    def image_features(self) -> int:
        """Width of the pooled image features fed to the fusion head."""
        if self.pooling == "stats":
            return len(STATS) * (self.in_channels + sum(self.channels))
        return self.channels[-1]

    @property
    def divisor(self) -> int:
        """The crop grid must be a multiple of this along every axis."""
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["clinical_hidden"] = list(self.clinical_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MTnetConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _res_unit(in_ch: int, out_ch: int, stride: int, subunits: int, last_conv_only: bool = False,
              norm: str = "instance"):
    from monai.networks.blocks import ResidualUnit

    return ResidualUnit(3, in_ch, out_ch, strides=stride, kernel_size=3, subunits=subunits,
                        act="PRELU", norm=norm.upper(), last_conv_only=last_conv_only)


class ImageEncoder(nn.Module):
    """3D residual encoder (Fig. 2A).

    Input ``(B, in_channels, D, H, W)``; returns the list of every level's features, top
    first: level ``i < L-1`` is ``(B, channels[i], D / 2**(i+1), ...)`` (a residual unit of
    stride 2), the last (bottleneck) is ``(B, channels[-1], D / 2**(L-1), ...)`` (stride 1).
    """

    def __init__(self, in_channels: int, channels, num_res_units: int = 1, norm: str = "instance"):
        super().__init__()
        channels = [int(c) for c in channels]
        layers, previous = [], in_channels
        for i, c in enumerate(channels):
            stride = 1 if i == len(channels) - 1 else 2
            layers.append(_res_unit(previous, c, stride, max(1, num_res_units), norm=norm))
            previous = c
        self.levels = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class TumorDecoder(nn.Module):
    """UNet-like decoder with skips (Fig. 2B): the segmentation subnet whose Dice + CE
    loss is the multi-task feedback into the encoder.

    Input: the encoder's feature list; output ``(B, out_channels, D, H, W)`` tumor logits on
    the crop grid. Going up, level ``i`` concatenates the encoder's level-``i`` features
    with the decoded features from below and upsamples by 2 (transposed convolution + one
    residual unit), as MONAI's UNet does.
    """

    def __init__(self, channels, out_channels: int = 2, num_res_units: int = 1,
                 norm: str = "instance"):
        super().__init__()
        from monai.networks.blocks import Convolution

        channels = [int(c) for c in channels]
        ups = []
        # built bottom-up: the deepest skip level first (MONAI's parameter order)
        for i in range(len(channels) - 2, -1, -1):
            below = channels[i + 1] if i == len(channels) - 2 else channels[i]
            in_ch = channels[i] + below
            out_ch = out_channels if i == 0 else channels[i - 1]
            is_top = i == 0
            conv = Convolution(3, in_ch, out_ch, strides=2, kernel_size=3, act="PRELU",
                               norm=norm.upper(), conv_only=is_top and num_res_units == 0,
                               is_transposed=True)
            if num_res_units > 0:
                conv = nn.Sequential(conv, _res_unit(out_ch, out_ch, 1, 1, last_conv_only=is_top,
                                                     norm=norm))
            ups.append(conv)
        self.ups = nn.ModuleList(ups)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for up, skip in zip(self.ups, reversed(features[:-1])):
            x = up(torch.cat([skip, x], dim=1))
        return x


class ClinicalBlock(nn.Module):
    """Two fully connected layers on the encoded clinical/radiological factors (Fig. 2C):
    ``(B, F) -> (B, hidden[1])``."""

    def __init__(self, n_factors: int, hidden=(32, 16), dropout: float = 0.0):
        super().__init__()
        h1, h2 = (int(h) for h in hidden)
        self.layers = nn.Sequential(
            nn.Linear(n_factors, h1), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(h1, h2), nn.ReLU(),
        )
        self.out_features = h2

    def forward(self, factors: torch.Tensor) -> torch.Tensor:
        return self.layers(factors)


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 -> float32 (a long low-precision sum loses digits); float64 stays."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def global_pool(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, d, h, w) -> (B, C)``: the mean over the whole grid (at least float32)."""
    return _at_least_float32(features).mean(dim=(2, 3, 4))


def downsample_mask(mask: torch.Tensor, size) -> torch.Tensor:
    """``(B, 1, D, H, W)`` 0/1 mask -> ``(B, 1, *size)`` fraction of each coarse voxel
    covered (area interpolation): a tumor never vanishes on a coarser grid."""
    return nn.functional.interpolate(mask.float(), size=tuple(size), mode="area")


def masked_pool(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, C, d, h, w)``, mask ``(B, 1, D, H, W)`` -> ``(B, C)``: the mean of the features
    weighted by the mask's coverage of each feature voxel. An empty mask gives NaN (the data
    loader refuses empty tumor masks, so this never passes silently)."""
    f = _at_least_float32(features)
    w = downsample_mask(mask, f.shape[2:]).to(f.dtype)
    return (f * w).sum(dim=(2, 3, 4)) / w.sum(dim=(2, 3, 4))


STATS = ("crop_mean", "tumor_mean", "tumor_sd", "shell_mean")


def region_stats(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, C, d, h, w)``, mask ``(B, 1, D, H, W)`` -> ``(B, 4 C)``: per channel, in the
    order of :data:`STATS`, the mean over the crop, the mean and the standard deviation
    inside the tumor (weighted by the mask's coverage of each feature voxel, as
    :func:`masked_pool`) and the mean in the tumor's shell, the feature voxels one voxel
    outside it (a 3x3x3 max filter of the coverage less the coverage).

    Why (docs/mtnet.md): the traits a reader scores (heterogeneity within the tumor, capsule,
    the peritumoral ring) are first- and second-order statistics of regions the tumor mask
    names; a mean over the whole crop dilutes them, so a small-data network has to learn
    them from very few events. An empty mask gives NaN, like :func:`masked_pool`."""
    f = _at_least_float32(features)
    w = downsample_mask(mask, f.shape[2:]).to(f.dtype)
    shell = (nn.functional.max_pool3d(w, 3, stride=1, padding=1) - w).clamp(min=0)

    def mean(x, weight):
        return (x * weight).sum(dim=(2, 3, 4)) / weight.sum(dim=(2, 3, 4)).clamp(min=1e-6)

    inside = mean(f, w)
    sd = (mean(f * f, w) - inside * inside).clamp(min=0).add(1e-6).sqrt()
    inside = torch.where(w.sum(dim=(2, 3, 4)) > 0, inside, torch.full_like(inside, float("nan")))
    return torch.cat([global_pool(f), inside, sd, mean(f, shell)], dim=1)


class FusionHead(nn.Module):
    """[pooled image features ‖ clinical features] -> FC -> one MVI logit (Fig. 2D):
    ``(B, in_features) -> (B,)``. ``hidden = 0``: a single linear layer."""

    def __init__(self, in_features: int, hidden: int = 16, dropout: float = 0.0):
        super().__init__()
        if hidden > 0:
            self.layers = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, hidden),
                                        nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))
        else:
            self.layers = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)


@dataclass
class MTnetOutput:
    """``logit`` (B,); ``segmentation`` (B, 2, D, H, W) tumor logits or None; ``features``
    the encoder level chosen for the H-score, (B, C, d, h, w), when asked for."""

    logit: torch.Tensor
    segmentation: torch.Tensor | None = None
    features: torch.Tensor | None = field(default=None, repr=False)


class MTnet(nn.Module):
    """The multi-task network of Fig. 2, its blocks switched by :class:`MTnetConfig`.

    ``forward(image (B, 1, D, H, W) | None, clinical (B, F) | None, tumor (B, 1, D, H, W) |
    None)``. The tumor mask is read only when the configuration uses it as an input channel
    or as the pooling mask; it is never needed for the segmentation output.
    """

    def __init__(self, config: MTnetConfig):
        super().__init__()
        self.config = config
        width = 0
        if config.image:
            self.encoder = ImageEncoder(config.in_channels, config.channels, config.num_res_units,
                                        config.norm)
            width += config.image_features
            if config.feature_norm:
                self.feature_norm = nn.BatchNorm1d(config.image_features, affine=False)
        if config.segmentation:
            self.decoder = TumorDecoder(config.channels, 2, config.num_res_units, config.norm)
        if config.clinical:
            self.clinical_block = ClinicalBlock(config.n_factors, config.clinical_hidden,
                                                config.dropout)
            width += self.clinical_block.out_features
        self.head = FusionHead(width, config.head_hidden, config.dropout)

    def pool(self, image: torch.Tensor, tumor: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The pooled image features (B, image_features) the fusion head reads (before
        feature_norm), and the encoder's levels."""
        cfg = self.config
        x = torch.cat([image, tumor.to(image.dtype)], dim=1) if cfg.mask_channel else image
        levels = self.encoder(x)
        if cfg.pooling == "stats":
            pooled = torch.cat([region_stats(f, tumor) for f in [x, *levels]], dim=1)
        elif cfg.pooling == "tumor":
            pooled = masked_pool(levels[-1], tumor)
        else:
            pooled = global_pool(levels[-1])
        return pooled, levels

    def forward(self, image: torch.Tensor | None = None, clinical: torch.Tensor | None = None,
                tumor: torch.Tensor | None = None, return_features: bool = False) -> MTnetOutput:
        cfg = self.config
        parts, seg, feats = [], None, None
        if cfg.image:
            if image is None:
                raise ValueError("MTnet: this configuration needs the image")
            if cfg.needs_tumor_input and tumor is None:
                raise ValueError("MTnet: this configuration needs the tumor mask as input")
            pooled, levels = self.pool(image, tumor)
            parts.append(self.feature_norm(pooled) if cfg.feature_norm else pooled)
            if cfg.segmentation:
                seg = self.decoder(levels)
            if return_features:
                feats = levels[cfg.hscore_level]
        if cfg.clinical:
            if clinical is None:
                raise ValueError("MTnet: this configuration needs the clinical factors")
            parts.append(self.clinical_block(clinical))
        dtype = torch.promote_types(*(p.dtype for p in parts)) if len(parts) > 1 else parts[0].dtype
        fused = torch.cat([p.to(dtype) for p in parts], dim=1) if len(parts) > 1 else parts[0]
        return MTnetOutput(self.head(fused), seg, feats)


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
