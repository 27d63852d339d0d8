// Statistics for A/B tests; see stats.h for the formulas and the choices made.
// The normal and Student t distributions are Boost.Math's (header-only).
#include "metrics/stats.h"

#include <algorithm>
#include <boost/math/distributions/complement.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace mtf::stats {
namespace {

namespace bm = boost::math;

// Boost.Math's error handling, written out so that a project-wide
// BOOST_MATH_*_POLICY macro cannot turn an error into a silent NaN or infinity:
// every error throws. The public functions check their arguments first and
// throw std::invalid_argument with the project's messages (function, argument,
// fix), and handle the end points (p = 0 or 1, t = NaN) themselves, so a Boost
// exception escaping from here is a bug in this file. Underflow to 0 (a tail
// below 1e-308) is the right answer for a p-value, not an error. Boost computes
// double arguments in long double internally (its default), so tails keep their
// relative accuracy.
using BoostPolicy = bm::policies::policy<
    bm::policies::domain_error<bm::policies::throw_on_error>,
    bm::policies::pole_error<bm::policies::throw_on_error>,
    bm::policies::overflow_error<bm::policies::throw_on_error>,
    bm::policies::evaluation_error<bm::policies::throw_on_error>,
    bm::policies::rounding_error<bm::policies::throw_on_error>,
    bm::policies::underflow_error<bm::policies::ignore_error>>;
using Normal = bm::normal_distribution<double, BoostPolicy>;
using StudentT = bm::students_t_distribution<double, BoostPolicy>;
const Normal kStandardNormal(0.0, 1.0);

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

void require_finite(std::span<const double> x, const char* fn, const char* arg) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      fail(std::string(fn) + "(" + arg + "[" + std::to_string(i) + "])",
           "expected a finite number, got " + std::to_string(x[i]) +
               "; drop or impute the value before the test");
    }
  }
}

void require_at_least_two(std::span<const double> x, const char* fn, const char* arg) {
  if (x.size() < 2) {
    fail(std::string(fn) + "(" + arg + ")", "needs at least 2 values to estimate a variance, got " +
                                                std::to_string(x.size()) +
                                                "; run the test with more users per arm");
  }
}

void require_same_size(std::span<const double> x, std::span<const double> y, const char* fn,
                       const char* ax, const char* ay) {
  if (x.size() != y.size()) {
    fail(std::string(fn) + "(" + ax + ", " + ay + ")",
         std::string("expected one value per user in both, got sizes ") + std::to_string(x.size()) +
             " and " + std::to_string(y.size()) + "; pass paired per-user arrays");
  }
}

void require_confidence(double confidence, const char* fn) {
  if (!(confidence > 0 && confidence < 1)) {
    fail(std::string(fn) + "(confidence)",
         "expected a level in (0, 1) such as 0.95, got " + std::to_string(confidence));
  }
}

void require_probability(double p, const char* where) {
  if (!(p >= 0 && p <= 1)) {
    fail(where, "expected a probability in [0, 1], got " + std::to_string(p) +
                    "; pass a lower-tail probability such as 0.975");
  }
}

/// Degrees of freedom: > 0, +inf allowed (the normal limit).
void require_df(double df, const char* where) {
  if (!(df > 0)) {
    fail(where, "expected degrees of freedom > 0 (or +inf), got " + std::to_string(df) +
                    "; a t-test's df comes from its sample sizes, so each sample needs 2 values or more");
  }
}

double mean_of(std::span<const double> x) {
  double s = 0;
  for (double v : x) s += v;
  return s / static_cast<double>(x.size());
}

/// Sample variance (n - 1) around a given mean.
double variance_about(std::span<const double> x, double mean) {
  double s = 0;
  for (double v : x) s += (v - mean) * (v - mean);
  return s / static_cast<double>(x.size() - 1);
}

/// Sample covariance (n - 1) around given means.
double covariance_about(std::span<const double> x, double mx, std::span<const double> y,
                        double my) {
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += (x[i] - mx) * (y[i] - my);
  return s / static_cast<double>(x.size() - 1);
}

/// Two-sided normal p-value for a z statistic; handles the 0/0 of a zero
/// standard error (equal values: p = 1; different: p = 0).
double two_sided_normal_p(double diff, double se) {
  if (se == 0) return diff == 0 ? 1.0 : 0.0;
  return 2 * bm::cdf(bm::complement(kStandardNormal, std::abs(diff / se)));
}

}  // namespace

Summary summarise(std::span<const double> x) {
  require_finite(x, "summarise", "x");
  Summary s;
  s.n = x.size();
  if (x.empty()) {
    s.mean = s.min = s.max = kNaN;
    return s;
  }
  s.mean = mean_of(x);
  s.sd = x.size() < 2 ? 0.0 : std::sqrt(variance_about(x, s.mean));
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  s.min = *lo;
  s.max = *hi;
  return s;
}

double normal_cdf(double z) {
  if (std::isnan(z)) return kNaN;
  return bm::cdf(kStandardNormal, z);
}

double normal_quantile(double p) {
  require_probability(p, "normal_quantile(p)");
  if (p == 0) return -kInf;
  if (p == 1) return kInf;
  return bm::quantile(kStandardNormal, p);
}

double student_t_cdf(double t, double df) {
  require_df(df, "student_t_cdf(df)");
  if (std::isnan(t)) return kNaN;
  return bm::cdf(StudentT(df), t);
}

double student_t_quantile(double p, double df) {
  require_probability(p, "student_t_quantile(p)");
  require_df(df, "student_t_quantile(df)");
  if (p == 0) return -kInf;
  if (p == 1) return kInf;
  return bm::quantile(StudentT(df), p);
}

TTest welch_t_test(std::span<const double> a, std::span<const double> b) {
  require_at_least_two(a, "welch_t_test", "a");
  require_at_least_two(b, "welch_t_test", "b");
  require_finite(a, "welch_t_test", "a");
  require_finite(b, "welch_t_test", "b");
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  const double ma = mean_of(a), mb = mean_of(b);
  const double va = variance_about(a, ma) / na, vb = variance_about(b, mb) / nb;
  const double se2 = va + vb;
  TTest r;
  const double diff = mb - ma;
  if (se2 == 0) {
    r.df = na + nb - 2;
    r.t = diff == 0 ? 0.0 : std::copysign(kInf, diff);
    r.p = diff == 0 ? 1.0 : 0.0;
    return r;
  }
  r.t = diff / std::sqrt(se2);
  // Welch-Satterthwaite, divided through by se2^2: the same df, but no
  // underflow of the squares (va below 1e-162 would make it 0 / 0).
  const double wa = va / se2, wb = vb / se2;
  r.df = 1 / (wa * wa / (na - 1) + wb * wb / (nb - 1));
  r.p = std::min(1.0, 2 * bm::cdf(bm::complement(StudentT(r.df), std::abs(r.t))));
  return r;
}

Lift mean_lift(std::span<const double> control, std::span<const double> treatment,
               double confidence) {
  require_confidence(confidence, "mean_lift");
  require_at_least_two(control, "mean_lift", "control");
  require_at_least_two(treatment, "mean_lift", "treatment");
  require_finite(control, "mean_lift", "control");
  require_finite(treatment, "mean_lift", "treatment");
  Lift r;
  r.n_control = control.size();
  r.n_treatment = treatment.size();
  const double mc = mean_of(control), mt = mean_of(treatment);
  if (mc == 0) {
    fail("mean_lift(control)",
         "the control mean is 0, so a relative lift is undefined; report the absolute "
         "difference (welch_t_test) instead");
  }
  const double nc = static_cast<double>(control.size()), nt = static_cast<double>(treatment.size());
  const double vc = variance_about(control, mc), vt = variance_about(treatment, mt);
  r.control = mc;
  r.treatment = mt;
  r.lift = mt / mc - 1;
  const double var_lift = vt / (nt * mc * mc) + mt * mt * vc / (nc * mc * mc * mc * mc);
  const double half = normal_quantile(0.5 + confidence / 2) * std::sqrt(var_lift);
  r.ci_low = r.lift - half;
  r.ci_high = r.lift + half;
  r.p_value = welch_t_test(control, treatment).p;
  return r;
}

namespace {

struct RatioArm {
  double ratio = 0, variance = 0;
};

/// One arm's ratio sum(num)/sum(den) and the delta-method variance of that ratio.
RatioArm ratio_arm(std::span<const double> num, std::span<const double> den, const char* an,
                   const char* ad) {
  require_same_size(num, den, "ratio_lift", an, ad);
  require_at_least_two(num, "ratio_lift", an);
  require_finite(num, "ratio_lift", an);
  require_finite(den, "ratio_lift", ad);
  const double mn = mean_of(num), md = mean_of(den);
  if (!(md > 0)) {
    fail(std::string("ratio_lift(") + ad + ")",
         "expected a positive sum of denominators, got " +
             std::to_string(md * static_cast<double>(den.size())) +
             "; a ratio metric needs at least one play (or impression) in each arm");
  }
  RatioArm r;
  r.ratio = mn / md;
  const double n = static_cast<double>(num.size());
  const double vn = variance_about(num, mn), vd = variance_about(den, md);
  const double c = covariance_about(num, mn, den, md);
  // Linearisation: R ~ (mean(num) - R mean(den)) / mean(den); clamp the tiny
  // negative values that cancellation can produce when num is proportional to den.
  r.variance = std::max(0.0, (vn - 2 * r.ratio * c + r.ratio * r.ratio * vd) / (n * md * md));
  return r;
}

}  // namespace

Lift ratio_lift(std::span<const double> num_c, std::span<const double> den_c,
                std::span<const double> num_t, std::span<const double> den_t, double confidence) {
  require_confidence(confidence, "ratio_lift");
  const RatioArm c = ratio_arm(num_c, den_c, "num_c", "den_c");
  const RatioArm t = ratio_arm(num_t, den_t, "num_t", "den_t");
  if (c.ratio == 0) {
    fail("ratio_lift(num_c)",
         "the control ratio is 0 (no numerator events), so a relative lift is undefined; "
         "compare the absolute difference instead");
  }
  Lift r;
  r.n_control = num_c.size();
  r.n_treatment = num_t.size();
  r.control = c.ratio;
  r.treatment = t.ratio;
  r.lift = t.ratio / c.ratio - 1;
  const double rc2 = c.ratio * c.ratio;
  const double var_lift = t.variance / rc2 + t.ratio * t.ratio * c.variance / (rc2 * rc2);
  const double half = normal_quantile(0.5 + confidence / 2) * std::sqrt(var_lift);
  r.ci_low = r.lift - half;
  r.ci_high = r.lift + half;
  r.p_value = two_sided_normal_p(t.ratio - c.ratio, std::sqrt(t.variance + c.variance));
  return r;
}

Cuped cuped(std::span<const double> y_c, std::span<const double> x_c, std::span<const double> y_t,
            std::span<const double> x_t) {
  require_same_size(y_c, x_c, "cuped", "y_c", "x_c");
  require_same_size(y_t, x_t, "cuped", "y_t", "x_t");
  require_at_least_two(y_c, "cuped", "y_c");
  require_at_least_two(y_t, "cuped", "y_t");
  require_finite(y_c, "cuped", "y_c");
  require_finite(x_c, "cuped", "x_c");
  require_finite(y_t, "cuped", "y_t");
  require_finite(x_t, "cuped", "x_t");
  const double n = static_cast<double>(y_c.size() + y_t.size());
  double sx = 0, sy = 0;
  for (double v : x_c) sx += v;
  for (double v : x_t) sx += v;
  for (double v : y_c) sy += v;
  for (double v : y_t) sy += v;
  const double mx = sx / n, my = sy / n;
  double sxx = 0, sxy = 0;
  auto accumulate = [&](std::span<const double> y, std::span<const double> x) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      sxx += (x[i] - mx) * (x[i] - mx);
      sxy += (x[i] - mx) * (y[i] - my);
    }
  };
  accumulate(y_c, x_c);
  accumulate(y_t, x_t);
  if (!(sxx > 0)) {
    fail("cuped(x_c, x_t)",
         "the covariate is constant over both arms, so it explains nothing; pass a "
         "pre-experiment metric that varies between users");
  }
  Cuped r;
  r.theta = sxy / sxx;
  auto adjust = [&](std::span<const double> y, std::span<const double> x) {
    std::vector<double> out(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) out[i] = y[i] - r.theta * (x[i] - mx);
    return out;
  };
  r.control = adjust(y_c, x_c);
  r.treatment = adjust(y_t, x_t);
  const double nc = static_cast<double>(y_c.size()), nt = static_cast<double>(y_t.size());
  const double before =
      variance_about(y_c, mean_of(y_c)) / nc + variance_about(y_t, mean_of(y_t)) / nt;
  const double after = variance_about(r.control, mean_of(r.control)) / nc +
                       variance_about(r.treatment, mean_of(r.treatment)) / nt;
  r.variance_reduction = before > 0 ? 1 - after / before : 0.0;
  return r;
}

namespace {

/// Sorts v[lo, hi) by value with a merge sort and returns the number of
/// inversions (pairs i < j with v[i] > v[j]); equal values are not inversions.
std::uint64_t count_inversions(std::vector<double>& v, std::vector<double>& buf, std::size_t lo,
                               std::size_t hi) {
  if (hi - lo < 2) return 0;
  const std::size_t mid = lo + (hi - lo) / 2;
  std::uint64_t swaps = count_inversions(v, buf, lo, mid) + count_inversions(v, buf, mid, hi);
  std::size_t i = lo, j = mid, k = lo;
  while (i < mid && j < hi) {
    if (v[j] < v[i]) {
      swaps += mid - i;  // v[j] jumps ahead of every value left in the left half
      buf[k++] = v[j++];
    } else {
      buf[k++] = v[i++];
    }
  }
  while (i < mid) buf[k++] = v[i++];
  while (j < hi) buf[k++] = v[j++];
  std::copy(buf.begin() + static_cast<std::ptrdiff_t>(lo),
            buf.begin() + static_cast<std::ptrdiff_t>(hi),
            v.begin() + static_cast<std::ptrdiff_t>(lo));
  return swaps;
}

/// Sum over runs of equal adjacent values of t (t - 1) / 2, for a sorted range.
template <class Equal>
std::uint64_t tied_pairs(std::size_t n, Equal equal) {
  std::uint64_t pairs = 0, run = 1;
  for (std::size_t i = 1; i < n; ++i) {
    if (equal(i - 1, i)) {
      ++run;
    } else {
      pairs += run * (run - 1) / 2;
      run = 1;
    }
  }
  return pairs + run * (run - 1) / 2;
}

}  // namespace

double kendall_tau_b(std::span<const double> a, std::span<const double> b) {
  require_same_size(a, b, "kendall_tau_b", "a", "b");
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      fail("kendall_tau_b(" + std::string(std::isnan(a[i]) ? "a" : "b") + "[" + std::to_string(i) +
               "])",
           "NaN has no rank; drop the pair before computing the correlation");
    }
  }
  const std::size_t n = a.size();
  if (n < 2) return kNaN;
  std::vector<std::pair<double, double>> pairs(n);
  for (std::size_t i = 0; i < n; ++i) pairs[i] = {a[i], b[i]};
  std::sort(pairs.begin(), pairs.end());
  const std::uint64_t n0 = static_cast<std::uint64_t>(n) * (n - 1) / 2;
  const std::uint64_t tied_a =
      tied_pairs(n, [&](std::size_t i, std::size_t j) { return pairs[i].first == pairs[j].first; });
  const std::uint64_t tied_ab =
      tied_pairs(n, [&](std::size_t i, std::size_t j) { return pairs[i] == pairs[j]; });
  // Within a run of equal a the b values are already ascending, so the merge sort
  // counts exactly the pairs discordant on both variables.
  std::vector<double> bs(n), buf(n);
  for (std::size_t i = 0; i < n; ++i) bs[i] = pairs[i].second;
  const std::uint64_t discordant = count_inversions(bs, buf, 0, n);
  const std::uint64_t tied_b =
      tied_pairs(n, [&](std::size_t i, std::size_t j) { return bs[i] == bs[j]; });
  if (tied_a == n0 || tied_b == n0) return kNaN;
  // concordant + discordant = n0 - tied_a - tied_b + tied_ab.
  const double untied = static_cast<double>(n0 - tied_a - tied_b + tied_ab);
  const double numer = untied - 2 * static_cast<double>(discordant);
  return numer / std::sqrt(static_cast<double>(n0 - tied_a) * static_cast<double>(n0 - tied_b));
}

}  // namespace mtf::stats
