// Statistics for comparing the arms of an A/B test: summaries, the normal and
// Student t distributions, Welch's t-test, relative lifts with delta-method
// confidence intervals (plain means and ratio metrics), CUPED variance reduction
// and Kendall's tau-b rank correlation (to compare an offline metric's ranking of
// policies with the online one).
//
// Everything here is plain double arithmetic on spans; the distributions
// (normal, Student t: their CDFs and quantiles) are Boost.Math's, header-only.
// Inputs are one value per user (a user-level mean or sum), the unit of
// randomisation, so the samples are independent.
//
// Errors: bad input (sizes that differ, too few values for a variance, NaN or
// infinite values, a zero denominator) throws std::invalid_argument whose
// message names the function, the argument and the fix.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace mtf::stats {

/// Mean, sample standard deviation, extremes and count of a sample.
struct Summary {
  double mean = 0, sd = 0, min = 0, max = 0;  ///< sd: sample (n - 1 divisor); 0 when n < 2
  std::size_t n = 0;
};

/// Summarises `x` (two-pass: the mean, then the squared deviations, which keeps
/// the standard deviation accurate when the mean is large).
/// Edge cases: empty `x` gives n = 0, sd = 0 and NaN mean, min and max (there is
/// no value to report; NaN keeps a table from showing a fake 0); one value gives
/// sd = 0. Throws std::invalid_argument on a NaN or infinite value (names its index).
Summary summarise(std::span<const double> x);

/// Standard normal cumulative distribution function P(Z <= z) (Boost.Math's
/// normal distribution: erfc, so the lower tail keeps full relative accuracy:
/// normal_cdf(-30) ~ 4.9e-198, not 0). normal_cdf(-inf) = 0, normal_cdf(inf) = 1,
/// NaN gives NaN.
double normal_cdf(double z);

/// Inverse of normal_cdf: the z with P(Z <= z) = p (Boost.Math's quantile,
/// through the inverse of erfc, accurate deep into both tails). p = 0 gives -inf,
/// p = 1 gives +inf; p outside [0, 1] or NaN throws std::invalid_argument.
double normal_quantile(double p);

/// Student t cumulative distribution function P(T <= t) with `df` degrees of
/// freedom (df > 0, non-integer allowed; df = +inf gives normal_cdf). Boost.Math's
/// students_t distribution: the regularised incomplete beta function, in the form
/// (I or its complement) that keeps the smaller tail's relative accuracy, and the
/// normal limit above df = 1/epsilon.
/// t = +-inf gives 1 or 0; NaN t gives NaN; df <= 0 or NaN throws std::invalid_argument.
double student_t_cdf(double t, double df);

/// Inverse of student_t_cdf: the t with P(T <= t) = p, for the t intervals of
/// the oracle (e.g. student_t_quantile(0.975, n - 1)). p = 0 gives -inf, p = 1
/// gives +inf; p outside [0, 1] or NaN, and df <= 0 or NaN, throw std::invalid_argument.
double student_t_quantile(double p, double df);

/// Result of a two-sample t-test.
struct TTest {
  double t = 0, df = 0, p = 1;  ///< p: two-sided
};

/// Welch's unequal-variance t-test of mean(b) - mean(a) (so t > 0 when b is
/// larger): t = (mean_b - mean_a) / sqrt(s_a^2/n_a + s_b^2/n_b), Welch-Satterthwaite
/// df = (s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1)).
/// Needs n >= 2 in each sample. When both samples have zero variance the df is 0/0;
/// this returns df = n_a + n_b - 2 and t = 0, p = 1 if the means are equal, else
/// t = +-inf, p = 0.
TTest welch_t_test(std::span<const double> a, std::span<const double> b);

/// A relative lift of the treatment arm over the control arm with its confidence
/// interval (both as fractions: 0.05 is +5%).
struct Lift {
  double control = 0, treatment = 0;           ///< the arms' values (mean or ratio)
  double lift = 0;                             ///< treatment / control - 1
  double ci_low = 0, ci_high = 0;              ///< two-sided confidence interval of the lift
  double p_value = 1;                          ///< two-sided, for "no difference between the arms"
  std::size_t n_control = 0, n_treatment = 0;  ///< users per arm
};

/// Relative lift of the mean: lift = m_t / m_c - 1. The confidence interval is the
/// delta method's normal interval lift +- z_{(1+confidence)/2} * se with
/// se^2 = s_t^2 / (n_t m_c^2) + m_t^2 s_c^2 / (n_c m_c^4) (sample variances), the
/// usual large-sample interval for A/B lifts; the p-value is Welch's t-test on the
/// raw values (treatment vs control).
/// Needs n >= 2 per arm, a control mean != 0 (the lift is undefined otherwise) and
/// confidence in (0, 1).
Lift mean_lift(std::span<const double> control, std::span<const double> treatment,
               double confidence = 0.95);

/// Relative lift of a ratio metric, such as the positive-interaction rate
/// sum(likes) / sum(plays), from per-user numerators and denominators. Each arm's
/// value is R = sum(num) / sum(den) = mean(num) / mean(den), with the delta-method
/// variance of a ratio of means
///   var(R) ~ (s_num^2 - 2 R cov(num, den) + R^2 s_den^2) / (n mean(den)^2)
/// (sample moments, n - 1 divisor). The lift R_t / R_c - 1 gets the delta method
/// again: var(lift) ~ var(R_t) / R_c^2 + R_t^2 var(R_c) / R_c^4, and a normal
/// interval. The p-value is two-sided from z = (R_t - R_c) / sqrt(var(R_t) + var(R_c)).
/// Needs num/den of equal sizes per arm, n >= 2 per arm, sum(den) > 0 per arm,
/// R_c != 0 and confidence in (0, 1). A zero standard error gives a zero-width
/// interval and p = 1 for equal ratios, p = 0 otherwise.
Lift ratio_lift(std::span<const double> num_c, std::span<const double> den_c,
                std::span<const double> num_t, std::span<const double> den_t,
                double confidence = 0.95);

/// CUPED (Deng et al. 2013) adjusted outcomes.
struct Cuped {
  double theta = 0;                        ///< cov(y, x) / var(x), pooled over both arms
  std::vector<double> control, treatment;  ///< adjusted y' per user, in input order
  /// Relative reduction of the variance of the difference of the arms' means:
  /// 1 - (s'_c^2/n_c + s'_t^2/n_t) / (s_c^2/n_c + s_t^2/n_t), with s' the adjusted
  /// samples' sample deviations (0 when the raw variance is 0). With a pooled theta
  /// this is close to corr(x, y)^2.
  double variance_reduction = 0;
};

/// CUPED with a pre-experiment covariate x (e.g. each user's metric before the
/// test): theta = cov(y, x) / var(x) over the pooled sample of both arms (around
/// the pooled means), y' = y - theta (x - mean_x_pooled). Subtracting the pooled
/// mean keeps the pooled mean of y' equal to that of y, and each arm's mean equal
/// in expectation (x is independent of the assignment), so lifts on y' estimate
/// the same effect with less variance.
/// Needs y and x of equal sizes per arm, n >= 2 per arm, var(x) > 0.
Cuped cuped(std::span<const double> y_c, std::span<const double> x_c, std::span<const double> y_t,
            std::span<const double> x_t);

/// Kendall's tau-b rank correlation between paired samples a and b, with ties:
/// (concordant - discordant) / sqrt((n0 - n_a) (n0 - n_b)), n0 = n(n-1)/2 and n_a,
/// n_b the pairs tied in a, in b. O(n log n) (Knight's algorithm: sort by (a, b),
/// count the swaps of a merge sort on b). NaN when undefined: n < 2 or all values
/// of a (or of b) tied. Throws on different sizes or a NaN value.
double kendall_tau_b(std::span<const double> a, std::span<const double> b);

}  // namespace mtf::stats
