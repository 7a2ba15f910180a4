"""ComBat harmonisation of radiomics features across centers (neuroCombat 0.2.12).

ComBat (Johnson, Li & Rabinovic, Biostatistics 2007; for radiomics Orlhac et al., J Nucl
Med 2018) models each feature g of patient j in batch (center) i as

    x_ijg = alpha_g + gamma_ig + delta_ig * eps_ijg,   eps ~ N(0, sigma_g^2)

and removes the batch's location gamma_ig and scale delta_ig, whose estimates are shrunk
towards the batch's means over features by empirical Bayes (parametric priors):

    x*_ijg = (x_ijg - alpha_g - gamma*_ig) / delta*_ig + alpha_g      (scaled by sigma_g)

:meth:`ComBat.fit` runs neuroCombat on the training centers only, with the center as the
batch and no covariates (no outcome is used, so ComBat cannot carry label information into
a model). alpha_g is the size-weighted mean of the training batches' means and sigma_g^2
the pooled residual variance.

A center that was not among the training batches (an external center) gets its own batch
parameters estimated from its own rows, without labels: its features are standardised with
the training alpha_g and sigma_g, gamma and delta are estimated on them and shrunk with
the same empirical-Bayes step (neuroCombat's ``fit_LS_model_and_find_priors`` and
``find_parametric_adjustments`` applied to that one batch), and the adjusted values are
mapped back with alpha_g and sigma_g. The training parameters are untouched. Such a batch
needs at least two patients (its variance must be estimable); its patients are adjusted
together, so a new center's prediction uses the whole center at once.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from dataclasses import dataclass, field

import numpy as np

from mtnet.errors import InputError


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())  # neuroCombat prints every step


def _batch_adjustments(z: np.ndarray, eb: bool) -> tuple[np.ndarray, np.ndarray]:
    """(gamma*, delta*) of one batch's standardised data ``z`` (patients, features)."""
    # the package exports a function of the module's name: reach the module itself
    nc = importlib.import_module("neuroCombat.neuroCombat")

    m = z.shape[0]
    info = {"batch_info": [list(range(m))], "n_batch": 1, "ref_level": None,
            "sample_per_batch": np.array([m]), "n_sample": m}
    design = np.ones((m, 1))
    with _quiet(), np.errstate(divide="ignore", invalid="ignore"):
        ls = nc.fit_LS_model_and_find_priors(z.T, design, info, mean_only=False)
        if eb:
            gamma, delta = nc.find_parametric_adjustments(z.T, ls, info, mean_only=False)
        else:
            gamma, delta = nc.find_non_eb_adjustments(z.T, ls, info)
    return np.asarray(gamma, float)[0], np.asarray(delta, float)[0]


@dataclass
class ComBat:
    """Fitted ComBat: per feature the training location ``alpha`` and scale ``sigma``, and per
    training batch its ``gamma`` / ``delta`` (arrays over features)."""

    features: list
    alpha: np.ndarray
    sigma: np.ndarray
    gamma: dict = field(default_factory=dict)
    delta: dict = field(default_factory=dict)
    eb: bool = True

    @property
    def batches(self) -> list:
        return list(self.gamma)

    @classmethod
    def fit(cls, x: np.ndarray, batch, features=None, eb: bool = True) -> "ComBat":
        """Fit on the training rows ``x`` (patients, features) with their ``batch`` labels.

        Features must be finite and vary in the training rows (impute and filter first). With
        one training batch there is nothing to remove between training centers: its gamma is
        0 and delta 1, and alpha, sigma are its mean and SD (new batches are still aligned).
        """
        x = np.asarray(x, float)
        batch = np.asarray(batch).astype(str)
        features = list(features) if features is not None else [f"f{i}" for i in range(x.shape[1])]
        if x.ndim != 2 or x.shape[0] != len(batch) or x.shape[1] != len(features):
            raise ValueError(f"x {x.shape}, batch {len(batch)}, features {len(features)} disagree")
        if not np.isfinite(x).all():
            raise ValueError("ComBat needs finite features: impute missing values first")
        if np.any(x.std(axis=0) == 0):
            raise ValueError("ComBat needs features that vary: drop constant ones first")
        levels, counts = np.unique(batch, return_counts=True)
        if np.any(counts < 2):
            small = levels[counts < 2][0]
            raise InputError(f"ComBat needs at least 2 patients per training center; {small} has 1",
                             center=small, fix="set harmonize: none, or add patients")
        if len(levels) == 1:
            p = x.shape[1]
            return cls(features, x.mean(axis=0), x.std(axis=0),
                       {levels[0]: np.zeros(p)}, {levels[0]: np.ones(p)}, eb)
        import pandas as pd
        from neuroCombat import neuroCombat

        with _quiet(), np.errstate(divide="ignore", invalid="ignore"):
            out = neuroCombat(x.T.copy(), pd.DataFrame({"batch": batch}), "batch", eb=eb)
        est = out["estimates"]
        order = [str(b) for b in est["batches"]]
        gamma = {b: np.asarray(est["gamma.star"][i], float) for i, b in enumerate(order)}
        delta = {b: np.asarray(est["delta.star"][i], float) for i, b in enumerate(order)}
        alpha = np.asarray(est["stand.mean"], float)[:, 0]
        sigma = np.sqrt(np.asarray(est["var.pooled"], float)[:, 0])
        return cls(features, alpha, sigma, gamma, delta, eb)

    def transform(self, x: np.ndarray, batch) -> np.ndarray:
        """Harmonised ``x``: a training batch with its fitted parameters, any other batch with
        parameters estimated from its own rows in ``x`` (see the module docstring)."""
        x = np.asarray(x, float)
        batch = np.asarray(batch).astype(str)
        if x.ndim != 2 or x.shape[1] != len(self.features) or x.shape[0] != len(batch):
            raise ValueError(f"x {x.shape} does not match {len(self.features)} features / "
                             f"{len(batch)} batch labels")
        if not np.isfinite(x).all():
            raise ValueError("ComBat needs finite features: impute missing values first")
        z = (x - self.alpha) / self.sigma
        out = np.empty_like(z)
        for b in np.unique(batch):
            rows = batch == b
            if b in self.gamma:
                gamma, delta = self.gamma[b], self.delta[b]
            else:
                if rows.sum() < 2:
                    raise InputError("ComBat cannot estimate a new center's batch effect from one "
                                     "patient", center=b,
                                     fix="predict the whole center at once, or set harmonize: none")
                gamma, delta = _batch_adjustments(z[rows], self.eb)
            out[rows] = (z[rows] - gamma) / np.sqrt(delta)
        return out * self.sigma + self.alpha

    def to_dict(self) -> dict:
        return {"features": list(self.features), "eb": self.eb,
                "alpha": self.alpha.tolist(), "sigma": self.sigma.tolist(),
                "gamma": {b: v.tolist() for b, v in self.gamma.items()},
                "delta": {b: v.tolist() for b, v in self.delta.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "ComBat":
        return cls(list(d["features"]), np.asarray(d["alpha"], float),
                   np.asarray(d["sigma"], float),
                   {b: np.asarray(v, float) for b, v in d["gamma"].items()},
                   {b: np.asarray(v, float) for b, v in d["delta"].items()}, bool(d["eb"]))
