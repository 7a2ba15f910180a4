# mtnet statistics, R engine (paper section 2.8). Sourced once per process by
# mtnet/stats/r_engine.py; every function returns a named list of plain vectors.
# pROC (DeLong), Hmisc::improveProb (NRI, IDI), rms::val.prob (calibration), survival.
suppressPackageStartupMessages({
  library(pROC)
  library(Hmisc)
  library(rms)
  library(survival)
})

mtnet_roc <- function(y, p) {
  # controls (y = 0) < cases (y = 1): the direction is fixed, never guessed from the data
  pROC::roc(response = y, predictor = p, levels = c(0, 1), direction = "<", quiet = TRUE)
}

mtnet_auc_ci <- function(y, p, conf_level) {
  r <- mtnet_roc(y, p)
  ci <- as.numeric(pROC::ci.auc(r, conf.level = conf_level, method = "delong"))
  pts <- pROC::coords(r, "all", ret = c("threshold", "specificity", "sensitivity"),
                      transpose = FALSE)
  list(auc = as.numeric(pROC::auc(r)), ci_low = ci[1], ci_high = ci[3],
       n_cases = length(r$cases), n_controls = length(r$controls),
       roc_threshold = pts$threshold, roc_fpr = 1 - pts$specificity,
       roc_tpr = pts$sensitivity)
}

mtnet_sens_at_spec <- function(se, sp, x) {
  # pROC::coords(input = "specificity") on a sorted curve (sp ascending): at an exact
  # specificity the first (highest) sensitivity, else linear interpolation between the
  # neighbouring points; vectorised here because coords() costs ~1.5 ms per call
  i <- findInterval(x, sp, left.open = TRUE) + 1
  i <- pmin(i, length(sp))
  j <- pmax(i, 2)
  prop <- (x - sp[j]) / (sp[j - 1] - sp[j])
  ifelse(sp[i] == x, se[i], se[j] + prop * (se[j - 1] - se[j]))
}

mtnet_roc_band <- function(y, p, idx_cases, idx_controls, boot_n, specificities, conf_level) {
  # pROC::ci.se's stratified bootstrap (pROC:::stratified.ci.se, pROC 1.18: the resampled
  # curve from pROC's thresholds and fun.sesp, its sensitivity at each specificity, type-7
  # quantiles) with the resamples drawn by the caller (1-based rows of a boot_n x m and a
  # boot_n x n matrix), so that the band is seeded by mtnet.seeds and equal in both engines
  r <- mtnet_roc(y, p)
  ic <- matrix(idx_cases, nrow = boot_n, byrow = TRUE)
  ik <- matrix(idx_controls, nrow = boot_n, byrow = TRUE)
  se <- vapply(seq_len(boot_n), function(b) {
    cases <- r$cases[ic[b, ]]
    controls <- r$controls[ik[b, ]]
    thr <- pROC:::roc.utils.thresholds(c(cases, controls), r$direction)
    perfs <- r$fun.sesp(thresholds = thr, controls = controls, cases = cases,
                        direction = r$direction)
    mtnet_sens_at_spec(perfs$se, perfs$sp, specificities)
  }, numeric(length(specificities)))
  se <- matrix(se, nrow = length(specificities))
  q <- apply(se, 1, quantile, probs = c((1 - conf_level) / 2, 0.5, 1 - (1 - conf_level) / 2),
             names = FALSE)
  list(specificity = specificities, tpr_low = q[1, ], tpr_median = q[2, ], tpr_high = q[3, ])
}

mtnet_delong_paired <- function(y, p1, p2) {
  r1 <- mtnet_roc(y, p1)
  r2 <- mtnet_roc(y, p2)
  t <- pROC::roc.test(r1, r2, method = "delong", paired = TRUE)
  list(auc1 = as.numeric(pROC::auc(r1)), auc2 = as.numeric(pROC::auc(r2)),
       z = as.numeric(t$statistic), p = as.numeric(t$p.value),
       diff_ci_low = as.numeric(t$conf.int[1]), diff_ci_high = as.numeric(t$conf.int[2]))
}

mtnet_delong_unpaired <- function(y1, p1, y2, p2) {
  r1 <- mtnet_roc(y1, p1)
  r2 <- mtnet_roc(y2, p2)
  t <- pROC::roc.test(r1, r2, method = "delong", paired = FALSE)
  list(auc1 = as.numeric(pROC::auc(r1)), auc2 = as.numeric(pROC::auc(r2)),
       statistic = as.numeric(t$statistic), df = as.numeric(t$parameter),
       p = as.numeric(t$p.value))
}

mtnet_improve <- function(y, p_old, p_new) {
  # Hmisc::improveProb returns z-scores only; two-sided normal p-values are added here
  r <- Hmisc::improveProb(x1 = p_old, x2 = p_new, y = y)
  pz <- function(z) 2 * pnorm(-abs(z))
  list(nri = r$nri, nri_events = r$nri.ev, nri_nonevents = r$nri.ne,
       z_nri = r$z.nri, p_nri = pz(r$z.nri),
       idi = r$idi, z_idi = r$z.idi, p_idi = pz(r$z.idi),
       idi_events = r$improveSens, idi_nonevents = r$improveSpec)
}

mtnet_nri_categorical <- function(y, p_old, p_new, cutoffs) {
  # risk categories [0, c1), [c1, c2), ..., [ck, 1]; category indices scaled to [0, 1] so
  # that improveProb counts moves up and down between categories (Pencina 2008)
  k <- length(cutoffs) + 1
  c_old <- findInterval(p_old, cutoffs) / k
  c_new <- findInterval(p_new, cutoffs) / k
  mtnet_improve(y, c_old, c_new)
}

mtnet_hosmer_lemeshow <- function(y, p, g) {
  # groups at the type-7 quantiles of p (as ResourceSelection::hoslem.test); df = groups - 2
  br <- unique(quantile(p, probs = seq(0, 1, length.out = g + 1), type = 7, names = FALSE))
  grp <- cut(p, breaks = br, include.lowest = TRUE, right = TRUE, labels = FALSE)
  grp <- match(grp, sort(unique(grp)))
  n <- as.numeric(tapply(y, grp, length))
  o <- as.numeric(tapply(y, grp, sum))
  e <- as.numeric(tapply(p, grp, sum))
  mp <- as.numeric(tapply(p, grp, mean))
  chi2 <- sum((o - e)^2 / (e * (1 - e / n)))
  df <- length(n) - 2
  list(chi2 = chi2, df = df, p = if (df > 0) pchisq(chi2, df, lower.tail = FALSE) else NA_real_,
       bin_n = n, bin_observed = o / n, bin_predicted = mp, bin_events = o)
}

mtnet_calibration <- function(y, p, g, conf_level) {
  # rms::val.prob gives Brier and defines Intercept/Slope as the logistic fit of y on
  # logit(p); val.prob stops that fit at a change of -2LL < 0.025 (lrm.fit's default eps),
  # which leaves ~1e-4 of slack, so the same rms::lrm.fit is rerun to convergence here
  v <- rms::val.prob(p, y, pl = FALSE)
  f <- rms::lrm.fit(qlogis(p), y, eps = 1e-12, maxit = 100)
  hl <- mtnet_hosmer_lemeshow(y, p, g)
  # Wilson score interval of each bin's observed proportion (prop.test without continuity
  # correction; Hmisc::binconf's "wilson" alters the bounds at x = 1 and x = n - 1)
  wilson <- vapply(seq_along(hl$bin_n), function(i) {
    suppressWarnings(stats::prop.test(hl$bin_events[i], hl$bin_n[i], conf.level = conf_level,
                                      correct = FALSE)$conf.int[1:2])
  }, numeric(2))
  # the smooth calibration curve rms::val.prob draws: lowess(p, y, iter = 0)
  sm <- stats::lowess(p, y, iter = 0)
  c(list(intercept = unname(f$coefficients[1]), slope = unname(f$coefficients[2]),
         brier = unname(v["Brier"]), val_prob_intercept = unname(v["Intercept"]),
         val_prob_slope = unname(v["Slope"])),
    list(hl_chi2 = hl$chi2, hl_df = hl$df, hl_p = hl$p, bin_n = hl$bin_n,
         bin_observed = hl$bin_observed, bin_predicted = hl$bin_predicted,
         bin_events = hl$bin_events, bin_low = wilson[1, ], bin_high = wilson[2, ],
         smooth_predicted = sm$x, smooth_observed = sm$y))
}

mtnet_net_benefit <- function(y, p, thresholds) {
  # Vickers & Elkin 2006: NB = TP/n - FP/n * pt / (1 - pt), positive when p >= pt
  n <- length(y)
  prev <- mean(y)
  nb <- vapply(thresholds, function(t) {
    pos <- p >= t
    sum(pos & y == 1) / n - sum(pos & y == 0) / n * t / (1 - t)
  }, numeric(1))
  list(threshold = thresholds, net_benefit = nb,
       treat_all = prev - (1 - prev) * thresholds / (1 - thresholds),
       treat_none = rep(0, length(thresholds)))
}

mtnet_youden <- function(y, p) {
  r <- mtnet_roc(y, p)
  b <- pROC::coords(r, "best", best.method = "youden",
                    ret = c("threshold", "sensitivity", "specificity"), transpose = FALSE)
  i <- which.min(b$threshold)  # ties: the lowest threshold
  list(threshold = b$threshold[i], sensitivity = b$sensitivity[i],
       specificity = b$specificity[i], youden = b$sensitivity[i] + b$specificity[i] - 1)
}

mtnet_km_logrank <- function(time, event, group, risk_times, conf_level) {
  g <- factor(group)
  fit <- survival::survfit(survival::Surv(time, event) ~ g, conf.type = "log-log",
                           conf.int = conf_level)
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  sd <- survival::survdiff(survival::Surv(time, event) ~ g)
  df <- length(levels(g)) - 1
  # step functions: a row at t = 0 (S = 1) per group, then survfit's rows; the log-log band
  # is [1, 1] where S = 1 (survfit leaves NA) and NA where S = 0
  strata <- rep(levels(g), fit$strata)
  lower <- ifelse(fit$surv == 1, 1, fit$lower)
  upper <- ifelse(fit$surv == 1, 1, fit$upper)
  n0 <- as.numeric(tab[, "n.start"])
  pick <- function(v, start) unlist(lapply(seq_along(levels(g)), function(i) {
    c(start[i], v[strata == levels(g)[i]])
  }))
  ones <- rep(1, length(levels(g)))
  zeros <- rep(0, length(levels(g)))
  # numbers at risk (time >= t) at the requested times, per group
  at <- summary(fit, times = risk_times, extend = TRUE)
  list(group = levels(g), n = n0, events = as.numeric(tab[, "events"]),
       median = as.numeric(tab[, "median"]), chi2 = sd$chisq, df = df,
       p = pchisq(sd$chisq, df, lower.tail = FALSE),
       curve_group = pick(strata, levels(g)), curve_time = pick(fit$time, zeros),
       curve_n_risk = pick(fit$n.risk, n0), curve_n_event = pick(fit$n.event, zeros),
       curve_n_censor = pick(fit$n.censor, zeros), curve_survival = pick(fit$surv, ones),
       curve_lower = pick(lower, ones), curve_upper = pick(upper, ones),
       risk_group = sub("^g=", "", as.character(at$strata)), risk_time = at$time,
       risk_n = at$n.risk)
}

mtnet_cox <- function(time, event, x, conf_level) {
  fit <- survival::coxph(survival::Surv(time, event) ~ x, ties = "efron")
  s <- summary(fit, conf.int = conf_level)
  list(coef = unname(coef(fit)), se = unname(sqrt(fit$var[1, 1])),
       hr = unname(s$conf.int[1, "exp(coef)"]),
       ci_low = unname(s$conf.int[1, 3]), ci_high = unname(s$conf.int[1, 4]),
       p = unname(s$coefficients[1, "Pr(>|z|)"]))
}

mtnet_ks_normal <- function(x) {
  # Kolmogorov-Smirnov against a normal with the sample mean and SD (as in the paper)
  list(p = suppressWarnings(stats::ks.test(x, "pnorm", mean(x), sd(x))$p.value))
}

mtnet_t_test <- function(a, b) {
  t <- stats::t.test(a, b, var.equal = TRUE)
  list(statistic = unname(t$statistic), p = t$p.value)
}

mtnet_wilcox <- function(a, b) {
  t <- suppressWarnings(stats::wilcox.test(a, b, correct = TRUE))
  list(statistic = unname(t$statistic), p = t$p.value)
}

mtnet_chisq <- function(tab) {
  t <- suppressWarnings(stats::chisq.test(tab, correct = TRUE))
  list(statistic = unname(t$statistic), p = t$p.value)
}

mtnet_fisher <- function(tab) {
  t <- stats::fisher.test(tab, workspace = 2e7)
  list(statistic = NA_real_, p = t$p.value)
}
