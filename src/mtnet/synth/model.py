"""The generative model of the synthetic cohort: clinical factors, image traits, outcomes.

All of it is pure NumPy and vectorised; :func:`draw_center_table` draws one centre's table
(no images) and :func:`ceilings` the Bayes-optimal AUC of each information set. The
formulae are documented in ``docs/synthetic_cohort.md``.

1. **Marginals (Table 1 of Fu et al. 2021, training vs external).** Every factor is drawn by
   *quota sampling on a Gaussian copula*: a latent vector z ~ N(0, Σ) per patient (a tumor
   burden factor B loads on diameter, lesion number, BCLC, AFP and treatment; a liver
   disease factor L on cirrhosis, Child-Pugh and HBV), then within each centre the patients
   are ranked by their latent value and the categories are handed out in the quota
   n·p_k (largest-remainder rounding). Continuous factors take the target quantile
   F⁻¹((rank − U)/n). Hence the centre's counts match the paper's proportions to ±1 while
   the factors keep their correlations.
2. **Image traits** t = (heterogeneity, margin irregularity, anti-corona, capsule, vessel
   contact), standard normal, t_j = ρ_j B + √(1−ρ_j²) u_j. The table's radiological columns
   are noisy reader calls 1[a·t + ε > τ], ε ~ N(0, σ_r²).
3. **Risk** logit p = α + f(clinical) + g(traits), with f and g linear (coefficients
   :data:`BETA_CLINICAL`, :data:`BETA_TRAITS`), α fixed per (role, event rate) on a
   100,000-patient draw so that E[p] equals the centre's event rate.
4. **Events**: exactly ``n_events`` MVI events, drawn from the conditional Bernoulli law
   P(Y | ΣY = k) ∝ Π p_i^{y_i}(1 − p_i)^{1−y_i} by rejection (independent Bernoulli
   draws in batches until one sums to k; exact, not an approximation).
5. **Times**: time to MVI of an event ~ LogNormal(log 420 − 0.35(η − η̄), 0.7²) days,
   follow-up end ~ U(400, 3400) d, non-events censored at ≥ 365 d; death after MVI at
   + Exp(median 300 e^{−0.2(η−η̄)}) d, without MVI at 365 + Exp(median 1500 e^{−0.2(η−η̄)}) d
   (:func:`draw_times`), η = α + f + g, η̄ = logit(event rate).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy.special import expit, ndtri

from mtnet.factors import RADIOLOGICAL
from mtnet.seeds import rng as make_rng

TRAITS = ("heterogeneity", "margin_irregularity", "anti_corona", "capsule", "vessel_contact")
# the table's radiological columns: reader calls of the traits
READINGS = tuple(RADIOLOGICAL)

# Table 1 of the paper. Child-Pugh A is printed as 200 in the training column (200 + 36 ≠
# 281) and 85 in the external one (85 + 11 ≠ 85): we take A = N − B, i.e. 245 and 74.
MARGINALS = {
    "train": {
        "n": 281, "age": (55.1, 12.0), "male": 235,
        "treatment": {"ablation": 6, "resection": 79, "TACE": 196},
        "hbv": 260, "cirrhosis": 161, "child_pugh_B": 36,
        "bclc": {"0": 32, "A": 169, "B": 80},
        "diameter": (61.9, 7.0, 198.0),
        "lesions": {1: 188, 2: 46, 3: 22, 4: 25},
        "afp": {0: 120, 1: 80, 2: 81},
    },
    "external": {
        "n": 85, "age": (60.6, 12.0), "male": 68,
        "treatment": {"ablation": 15, "resection": 18, "TACE": 52},
        "hbv": 82, "cirrhosis": 53, "child_pugh_B": 11,
        "bclc": {"0": 1, "A": 64, "B": 20},
        "diameter": (67.0, 10.0, 176.0),
        "lesions": {1: 66, 2: 7, 3: 3, 4: 9},
        "afp": {0: 31, 1: 22, 2: 32},
    },
}

# loadings of the latent factors: burden B, liver disease L (see module docstring)
LOAD_B = {"diameter": 0.35, "lesions": 0.3, "bclc": 0.45, "afp": 0.2, "treatment": 0.3}
LOAD_L = {"cirrhosis": 0.6, "child_pugh": 0.55, "hbv": 0.25}
TRAIT_RHO = {
    "heterogeneity": 0.1, "margin_irregularity": 0.05, "anti_corona": 0.05,
    "capsule": -0.05, "vessel_contact": 0.05,
}

# logit(p) = α + f + g. SCALE is tuned with the ceilings' own estimator (population_model)
# to external Bayes AUCs clinical 0.77, image 0.80, both 0.87: the images add +0.10 at the
# limit (docs/synthetic_cohort.md, "Ceilings").
BETA_CLINICAL = {
    "bclc": 0.35,            # per stage 0 → A → B
    "log2_diameter": 0.55,   # per doubling of max diameter (log2(d / 60 mm))
    "multiple": 0.45,        # lesion_number ≥ 2
    "afp": 0.75,             # per AFP band <25 / 25–400 / >400 ng/mL
    "child_pugh_B": 0.9,
    "tace": 0.6,             # TACE vs resection/ablation
    "age": -0.15,            # per 10 years above 55
    "hbv": 0.3,
}
BETA_TRAITS = {
    "heterogeneity": 0.75, "margin_irregularity": 0.7, "anti_corona": 0.7,
    "capsule": -0.5, "vessel_contact": 0.65,
}
SCALE = {"size": 0.1, "clinical": 1.38, "traits": 0.97}

# reader calls: reading = 1[Σ a·x + σ_r ε > τ]; x = true traits and ``multiple`` (lesions ≥ 2).
# They put image information into the clinical table; σ_r and the enhancement ratio's slope
# keep that leak small enough that clinical and image stay complementary.
READER_NOISE = 2.3
READER_CALLS = {
    "fusion_lesions": ({"margin_irregularity": 0.5, "multiple": 0.9}, 1.0),
    "invasive_shape": ({"margin_irregularity": 1.0}, 0.5),
    "capsule": ({"capsule": 1.0}, -0.3),
    # read only where a capsule was called: 1[a·(margin − capsule) + σ_r ε > τ]
    "capsule_breakthrough": ({"margin_irregularity": 0.7, "capsule": -0.7}, 0.9),
    "corona_enhancement": ({"vessel_contact": 0.6}, 0.6),
    "corona_low_attenuation": ({"anti_corona": 1.0}, 0.6),
    "mosaic_architecture": ({"heterogeneity": 1.0}, 0.2),
    "nodule_in_nodule": ({"heterogeneity": 0.7}, 1.1),
}
# tumor-to-liver attenuation ratio in the portal phase (washout): mean, per heterogeneity, SD
ENHANCEMENT_RATIO = (0.72, -0.02, 0.05)


def quota_counts(probs: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder rounding of n·p to integers summing to n."""
    raw = np.asarray(probs, float) / np.sum(probs) * n
    counts = np.floor(raw).astype(int)
    rest = n - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def _ranks(latent: np.ndarray) -> np.ndarray:
    r = np.empty(latent.size, dtype=int)
    r[np.argsort(latent, kind="stable")] = np.arange(latent.size)
    return r


def quota_categories(latent: np.ndarray, counts: dict) -> np.ndarray:
    """Categories in the quota of ``counts`` (ordered low → high) assigned by latent rank."""
    keys = list(counts)
    k = quota_counts(np.array([counts[c] for c in keys], float), latent.size)
    edges = np.cumsum(k)
    idx = np.searchsorted(edges, _ranks(latent), side="right")
    return np.array(keys, dtype=object)[idx]


def quota_uniform(latent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stratified uniforms (rank + U) / n: the empirical distribution is exactly uniform."""
    return (_ranks(latent) + rng.uniform(size=latent.size)) / latent.size


def _split_lognormal(u: np.ndarray, median: float, lo: float, hi: float, n_ref: int) -> np.ndarray:
    """Split log-normal quantile: median ``median``; the 1/n_ref and 1 − 1/n_ref quantiles
    land on the paper's range [lo, hi]."""
    z = ndtri(np.clip(u, 1e-9, 1 - 1e-9))
    zq = ndtri(1 - 1 / n_ref)
    s_lo, s_hi = np.log(median / lo) / zq, np.log(hi / median) / zq
    return np.clip(median * np.exp(np.where(z < 0, s_lo, s_hi) * z), lo, hi)


def draw_population(n: int, role: str, rng: np.random.Generator, min_diameter_mm: float = 7.0) -> pd.DataFrame:
    """n patients of a ``role`` (train | external): clinical factors, true traits, readings."""
    m = MARGINALS[role]
    B, L = rng.standard_normal(n), rng.standard_normal(n)

    def latent(load, factor):
        return load * factor + np.sqrt(1 - load**2) * rng.standard_normal(n)

    df = pd.DataFrame(index=np.arange(n))
    df["age"] = np.round(np.clip(m["age"][0] + m["age"][1] * ndtri(quota_uniform(rng.standard_normal(n), rng)), 18, 90)).astype(int)
    df["sex"] = quota_categories(rng.standard_normal(n), {"F": m["n"] - m["male"], "M": m["male"]})
    df["treatment"] = quota_categories(latent(LOAD_B["treatment"], B), m["treatment"])
    df["hbv"] = quota_categories(latent(LOAD_L["hbv"], L), {0: m["n"] - m["hbv"], 1: m["hbv"]}).astype(int)
    df["cirrhosis"] = quota_categories(latent(LOAD_L["cirrhosis"], L), {0: m["n"] - m["cirrhosis"], 1: m["cirrhosis"]}).astype(int)
    df["child_pugh"] = quota_categories(latent(LOAD_L["child_pugh"], L), {"A": m["n"] - m["child_pugh_B"], "B": m["child_pugh_B"]})
    df["bclc"] = quota_categories(latent(LOAD_B["bclc"], B), m["bclc"])
    med, lo, hi = m["diameter"]
    d = _split_lognormal(quota_uniform(latent(LOAD_B["diameter"], B), rng), med, lo, hi, m["n"])
    df["max_diameter_mm"] = np.round(np.maximum(d, min_diameter_mm), 1)
    lesions = quota_categories(latent(LOAD_B["lesions"], B), m["lesions"]).astype(int)
    df["lesion_number"] = np.where(lesions >= 4, rng.integers(4, 7, n), lesions)
    afp_band = quota_categories(latent(LOAD_B["afp"], B), m["afp"]).astype(int)
    lo_hi = np.array([[1.5, 25.0], [25.0, 400.0], [400.0, 60000.0]])
    u = rng.uniform(size=n)
    afp = np.exp(np.log(lo_hi[afp_band, 0]) + u * (np.log(lo_hi[afp_band, 1]) - np.log(lo_hi[afp_band, 0])))
    df["afp_ng_ml"] = np.round(afp, 1)
    df["afp_band"] = afp_band
    where = rng.choice(["right", "left", "both"], size=n, p=[0.7, 0.18, 0.12])
    df["location"] = np.where((df["lesion_number"] >= 2) & (rng.uniform(size=n) < 0.35), "both", where)
    for name in TRAITS:
        df[f"trait_{name}"] = latent(TRAIT_RHO[name], B) if TRAIT_RHO[name] >= 0 else -latent(-TRAIT_RHO[name], B)
    _read(df, rng)
    return df


def _read(df: pd.DataFrame, rng: np.random.Generator) -> None:
    """Reader calls (the table's radiological columns) of the true traits: noisy thresholds."""
    n = len(df)
    x = {name: df[f"trait_{name}"].to_numpy() for name in TRAITS}
    x["multiple"] = (df["lesion_number"] >= 2).to_numpy(float)
    for column, (weights, tau) in READER_CALLS.items():
        signal = sum(w * x[k] for k, w in weights.items())
        df[column] = (signal + READER_NOISE * rng.standard_normal(n) > tau).astype(int)
    df["capsule_breakthrough"] *= df["capsule"]
    mean, slope, sd = ENHANCEMENT_RATIO
    df["enhancement_ratio"] = np.round(mean + slope * x["heterogeneity"] + sd * rng.standard_normal(n), 3)


def linear_parts(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """f(clinical) and g(traits) of logit p = α + f + g (each centred on the training draw)."""
    b = BETA_CLINICAL
    bclc = df["bclc"].map({"0": 0, "A": 1, "B": 2}).to_numpy(float)
    size = (
        b["log2_diameter"] * np.log2(df["max_diameter_mm"].to_numpy(float) / 60.0)
        + b["multiple"] * (df["lesion_number"].to_numpy() >= 2)
    )
    other = (
        b["bclc"] * bclc
        + b["afp"] * df["afp_band"].to_numpy(float)
        + b["child_pugh_B"] * (df["child_pugh"].to_numpy() == "B")
        + b["tace"] * (df["treatment"].to_numpy() == "TACE")
        + b["age"] * (df["age"].to_numpy(float) - 55.0) / 10.0
        + b["hbv"] * df["hbv"].to_numpy(float)
    )
    g = sum(BETA_TRAITS[t] * df[f"trait_{t}"].to_numpy(float) for t in TRAITS)
    return SCALE["size"] * size + SCALE["clinical"] * other, SCALE["traits"] * g


# ---------------------------------------------------------------- information sets, ceilings

N_CEILING = 100_000


def features(df: pd.DataFrame, info: str) -> np.ndarray:
    """Design matrix of an information set, in the encoding of the generative model.

    ``clinical``: every column of the clinical table (clinical factors and the reader calls);
    ``image``: what the CT shows (the true traits, max diameter, lesion number);
    ``both``: their union.
    """
    size = [
        np.log2(df["max_diameter_mm"].to_numpy(float) / 60.0),
        np.log2(df["max_diameter_mm"].to_numpy(float) / 60.0) ** 2,
        *[(df["lesion_number"].to_numpy() == k) for k in (2, 3)],
        df["lesion_number"].to_numpy() >= 4,
    ]
    cols = list(size)
    if info in ("clinical", "both"):
        cols += [
            df["bclc"].to_numpy() == "A", df["bclc"].to_numpy() == "B",
            df["treatment"].to_numpy() == "TACE", df["treatment"].to_numpy() == "resection",
            df["afp_band"].to_numpy() == 1, df["afp_band"].to_numpy() == 2,
            df["child_pugh"].to_numpy() == "B", df["cirrhosis"].to_numpy(), df["hbv"].to_numpy(),
            (df["age"].to_numpy(float) - 55.0) / 10.0, df["sex"].to_numpy() == "M",
            *[df[r].to_numpy() for r in READINGS], df["enhancement_ratio"].to_numpy(float),
        ]
    if info in ("image", "both"):
        cols += [df[f"trait_{t}"].to_numpy() for t in TRAITS]
    return np.column_stack([np.asarray(c, float) for c in cols])


def _intercept(f_plus_g: np.ndarray, rate: float) -> float:
    """α such that the population mean of expit(α + f + g) is ``rate`` (bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expit(mid + f_plus_g).mean() < rate else (lo, mid)
    return (lo + hi) / 2


@functools.lru_cache(maxsize=32)
def population_model(role: str, rate: float, seed: int) -> dict:
    """Intercept and the information-set models of a (role, event rate), with ceilings.

    Two independent draws of :data:`N_CEILING` patients: α is fixed on the first; the risk
    given an information set is the logistic model on that set's design matrix
    (:func:`features`) fit by maximum likelihood on the first draw's outcomes; AUCs are
    measured on the second. For ``both`` the risk is the true p itself (exact Bayes).
    """
    gen = make_rng(seed, "synth", "ceilings", role, f"{rate:.6f}")
    fit_df = draw_population(N_CEILING, role, gen)
    f, g = linear_parts(fit_df)
    alpha = _intercept(f + g, rate)
    y_fit = gen.uniform(size=N_CEILING) < expit(alpha + f + g)
    test_df = draw_population(N_CEILING, role, gen)
    f2, g2 = linear_parts(test_df)
    p_test = expit(alpha + f2 + g2)
    y_test = gen.uniform(size=N_CEILING) < p_test
    models, aucs = {}, {}
    for info in ("clinical", "image"):
        X = features(fit_df, info)
        mu, sd = X.mean(0), X.std(0) + 1e-12
        coef = fit_logistic((X - mu) / sd, y_fit)
        models[info] = (coef, mu, sd)
        aucs[info] = auc(y_test, _predict(coef, (features(test_df, info) - mu) / sd))
    aucs["both"] = auc(y_test, p_test)
    return {"alpha": alpha, "models": models, "auc": aucs, "event_rate_test": float(y_test.mean())}


def fit_logistic(X: np.ndarray, y: np.ndarray, iters: int = 25, ridge: float = 1e-6) -> np.ndarray:
    """Maximum-likelihood logistic regression (intercept first) by Newton–Raphson (IRLS)."""
    Xi = np.column_stack([np.ones(len(X)), X])
    beta = np.zeros(Xi.shape[1])
    beta[0] = np.log(y.mean() / (1 - y.mean()))
    for _ in range(iters):
        p = expit(Xi @ beta)
        grad = Xi.T @ (y - p) - ridge * beta
        hess = (Xi * (p * (1 - p))[:, None]).T @ Xi + ridge * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta


def _predict(coef: np.ndarray, X: np.ndarray) -> np.ndarray:
    return expit(coef[0] + X @ coef[1:])


def auc(y, score) -> float:
    """AUC as the Mann–Whitney statistic (ties count one half)."""
    from scipy.stats import rankdata

    y = np.asarray(y, bool)
    r = rankdata(score)
    n1, n0 = y.sum(), (~y).sum()
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def risk_given(df: pd.DataFrame, model: dict, info: str) -> np.ndarray:
    coef, mu, sd = model["models"][info]
    return _predict(coef, (features(df, info) - mu) / sd)


def ceilings_record(role: str, rate: float, seed: int) -> dict:
    """What truth/ceilings.json holds: the AUCs and how they were computed."""
    m = population_model(role, rate, seed)
    return {
        "synthetic": True,
        "auc": {k: round(v, 4) for k, v in m["auc"].items()},
        "role": role,
        "event_rate": rate,
        "intercept": round(m["alpha"], 6),
        "n_draw": N_CEILING,
        "method": (
            "Bayes-optimal AUC per information set on two independent draws of "
            f"{N_CEILING} patients from the generative model (same role marginals and event "
            "rate): 'both' = AUC of the true risk p = expit(alpha + f + g); 'clinical' "
            "(every column of the clinical table incl. reader calls) and 'image' (true image "
            "traits, max diameter, lesion number) = AUC of the maximum-likelihood logistic "
            "model on that set's design matrix, fit on draw 1 and evaluated on draw 2. "
            "See docs/synthetic_cohort.md."
        ),
        "information_sets": {
            "clinical": "clinical table: clinical factors + 8 reader calls + enhancement ratio",
            "image": "true image traits (" + ", ".join(TRAITS) + "), max diameter, lesion number",
            "both": "all of the above (the true risk)",
        },
    }


# ---------------------------------------------------------------- outcomes


def draw_events(p: np.ndarray, k: int, rng: np.random.Generator, batch: int = 256) -> np.ndarray:
    """Y ~ Bernoulli(p) conditional on ΣY = k, exactly: rejection in batches of draws."""
    for _ in range(20_000):
        Y = rng.uniform(size=(batch, p.size)) < p
        hit = np.flatnonzero(Y.sum(1) == k)
        if hit.size:
            return Y[hit[0]].astype(int)
    raise RuntimeError(f"could not draw exactly {k} events among {p.size} patients")


def draw_times(eta: np.ndarray, eta_ref: float, mvi: np.ndarray, rng: np.random.Generator) -> dict:
    """Time to MVI (censoring ≥ 365 d), death and overall survival (days); see module doc."""
    n = eta.size
    d = eta - eta_ref
    follow = rng.uniform(400, 3400, n)
    t_mvi = np.exp(np.log(420.0) - 0.35 * d + 0.7 * rng.standard_normal(n))
    t_mvi = np.clip(t_mvi, 30, follow - 30)
    post = rng.exponential(300.0 / np.log(2) * np.exp(-0.2 * d))
    no_mvi_death = 365.0 + rng.exponential(1500.0 / np.log(2) * np.exp(-0.2 * d))
    death_time = np.where(mvi == 1, t_mvi + post, no_mvi_death)
    os_days = np.minimum(death_time, follow)
    ttm = np.where(mvi == 1, t_mvi, os_days)
    return {
        "time_to_mvi_days": np.round(ttm).astype(int),
        "death": (death_time <= follow).astype(int),
        "os_days": np.round(os_days).astype(int),
    }


def draw_center_table(settings: dict, seed: int, min_diameter_mm: float = 7.0) -> pd.DataFrame:
    """One centre's patients without images: canonical clinical columns plus the truth
    (``trait_*``, ``risk_true``, ``risk_clinical``, ``risk_image``, ``eta``, ``afp_band``)."""
    from mtnet.synth.presets import center_preset

    cp = center_preset(settings)
    center, role = settings["center"], settings["role"]
    rate = round(cp.n_events / cp.n_patients, 6)
    model = population_model(role, rate, seed)
    gen = make_rng(seed, "synth", center, "table")
    df = draw_population(cp.n_patients, role, gen, min_diameter_mm=min_diameter_mm)
    f, g = linear_parts(df)
    eta = model["alpha"] + f + g
    df["eta"] = eta
    df["risk_true"] = expit(eta)
    df["risk_clinical"] = risk_given(df, model, "clinical")
    df["risk_image"] = risk_given(df, model, "image")
    df["mvi"] = draw_events(df["risk_true"].to_numpy(), cp.n_events, gen)
    for key, val in draw_times(eta, np.log(rate / (1 - rate)), df["mvi"].to_numpy(), gen).items():
        df[key] = val
    df.insert(0, "patient_id", [f"{center}-{i + 1:04d}" for i in range(cp.n_patients)])
    return df
