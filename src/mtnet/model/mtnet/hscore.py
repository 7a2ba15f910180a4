"""H-score: the image heterogeneity score within the tumor area (paper §3.4).

The paper names the score but not its formula; ours (docs/mtnet.md, "H-score"):

1. Features: the encoder's level ``hscore_level`` (default 0: the first residual unit,
   half the crop grid), ``f_v`` in R^C at each feature voxel ``v``.
2. Weights: the tumor mask area-downsampled to that grid, ``w_v`` = the fraction of the
   feature voxel covered by the tumor.
3. Raw heterogeneity: the weighted dispersion of the unit feature directions
   ``u_v = f_v / |f_v|`` around their mean,

       h = sum_v w_v |u_v - u_bar|^2 / sum_v w_v = 1 - |u_bar|^2,
       u_bar = sum_v w_v u_v / sum_v w_v,

   in [0, 1]: 0 when every tumor voxel has the same feature direction (homogeneous), near
   1 when the directions spread evenly. Normalising each vector first makes ``h`` blind to
   the overall feature magnitude (contrast, network scale), so it measures variety only.
4. H-score: the training patients' ``h`` fixes a monotone map to [0, 1], their empirical
   distribution function made continuous — linear between the sorted training values
   (ties at their mean rank), the smallest mapped to 0, the largest to 1, the training
   median to 0.5, values outside the training range clipped. Saved with the model, so an
   external patient's H-score is its position among the training patients.
"""

from __future__ import annotations

import numpy as np
import torch

from mtnet.model.mtnet.network import downsample_mask

EPS = 1e-8


def raw_heterogeneity(features: torch.Tensor, tumor: torch.Tensor) -> torch.Tensor:
    """``h`` per patient: features ``(B, C, d, h, w)``, tumor mask ``(B, 1, D, H, W)`` ->
    ``(B,)`` in [0, 1] (NaN where the mask is empty)."""
    f = features.float()
    u = f / f.norm(dim=1, keepdim=True).clamp_min(EPS)
    w = downsample_mask(tumor, f.shape[2:])
    total = w.sum(dim=(1, 2, 3, 4))
    mean = (u * w).sum(dim=(2, 3, 4)) / total[:, None]
    return (1.0 - (mean * mean).sum(dim=1)).clamp(0.0, 1.0)


class HScoreReference:
    """The training patients' raw heterogeneity, and the map to the H-score."""

    def __init__(self, training_values):
        v = np.sort(np.asarray(training_values, float))
        v = v[np.isfinite(v)]
        if v.size < 2:
            raise ValueError("the H-score reference needs the raw heterogeneity of >= 2 training patients")
        self.values = v
        ranks = np.linspace(0.0, 1.0, v.size)
        self.xs, inverse = np.unique(v, return_inverse=True)
        self.ps = np.bincount(inverse, weights=ranks) / np.bincount(inverse)

    def transform(self, raw) -> np.ndarray:
        """H-score in [0, 1]; NaN stays NaN."""
        raw = np.asarray(raw, float)
        if self.xs.size == 1:
            out = np.where(raw < self.xs[0], 0.0, np.where(raw > self.xs[0], 1.0, 0.5))
        else:
            out = np.interp(raw, self.xs, self.ps, left=0.0, right=1.0)
        return np.where(np.isfinite(raw), out, np.nan)

    def to_list(self) -> list[float]:
        return [float(x) for x in self.values]
