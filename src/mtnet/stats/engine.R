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
  list(auc = as.numeric(pROC::auc(r)), ci_low = ci[1], ci_high = ci[3],
       n_cases = length(r$cases), n_controls = length(r$controls))
}

mtnet_delong_paired <- function(y, p1, p2) {
  r1 <- mtnet_roc(y, p1)
  r2 <- mtnet_roc(y, p2)
  t <- pROC::roc.test(r1, r2, method = "delong", paired = TRUE)
  list(auc1 = as.numeric(pROC::auc(r1)), auc2 = as.numeric(pROC::auc(r2)),
       z = as.numeric(t$statistic), p = as.numeric(t$p.value))
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
       bin_n = n, bin_observed = o / n, bin_predicted = mp)
}

mtnet_calibration <- function(y, p, g) {
  # rms::val.prob gives Brier and defines Intercept/Slope as the logistic fit of y on
  # logit(p); val.prob stops that fit at a change of -2LL < 0.025 (lrm.fit's default eps),
  # which leaves ~1e-4 of slack, so the same rms::lrm.fit is rerun to convergence here
  v <- rms::val.prob(p, y, pl = FALSE)
  f <- rms::lrm.fit(qlogis(p), y, eps = 1e-12, maxit = 100)
  hl <- mtnet_hosmer_lemeshow(y, p, g)
  c(list(intercept = unname(f$coefficients[1]), slope = unname(f$coefficients[2]),
         brier = unname(v["Brier"]), val_prob_intercept = unname(v["Intercept"]),
         val_prob_slope = unname(v["Slope"])),
    list(hl_chi2 = hl$chi2, hl_df = hl$df, hl_p = hl$p, bin_n = hl$bin_n,
         bin_observed = hl$bin_observed, bin_predicted = hl$bin_predicted))
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

mtnet_km_logrank <- function(time, event, group) {
  g <- factor(group)
  fit <- survival::survfit(survival::Surv(time, event) ~ g)
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  sd <- survival::survdiff(survival::Surv(time, event) ~ g)
  df <- length(levels(g)) - 1
  list(group = levels(g), n = as.numeric(tab[, "n.start"]), events = as.numeric(tab[, "events"]),
       median = as.numeric(tab[, "median"]), chi2 = sd$chisq, df = df,
       p = pchisq(sd$chisq, df, lower.tail = FALSE))
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
