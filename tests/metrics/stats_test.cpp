// Tests of metrics/stats.h: known answers computed by hand (shown in comments) or
// with an independent arbitrary-precision computation (mpmath, 40 digits: the t
// distribution by betainc and by integrating the density, which agree), and
// seeded simulations whose tolerances are derived in the comments.
#include "metrics/stats.h"

#include <doctest/doctest.h>

#include <boost/random/binomial_distribution.hpp>
#include <boost/random/normal_distribution.hpp>
#include <boost/random/poisson_distribution.hpp>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"

using namespace mtf::stats;

namespace {

/// Runs f, expecting std::invalid_argument whose message contains `needle`.
template <class F>
void check_throws_naming(F f, const std::string& needle) {
  bool thrown = false;
  try {
    f();
  } catch (const std::invalid_argument& e) {
    thrown = true;
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
  CHECK_MESSAGE(thrown, "expected std::invalid_argument naming " << needle);
}

/// Relative comparison (doctest's Approx adds 1 to the scale, which makes small
/// values absolute comparisons).
doctest::Approx rel(double expected, double eps) {
  return doctest::Approx(expected).epsilon(eps).scale(0);
}

double mean(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v;
  return s / static_cast<double>(x.size());
}

}  // namespace

TEST_CASE("summarise gives the mean, the sample deviation and the extremes") {
  // Deviations from the mean 5: -3 -1 -1 -1 0 0 2 4; squares sum to 32; sd = sqrt(32 / 7).
  const std::vector<double> x{2, 4, 4, 4, 5, 5, 7, 9};
  const Summary s = summarise(x);
  CHECK(s.n == 8);
  CHECK(s.mean == 5);
  CHECK(s.sd == doctest::Approx(std::sqrt(32.0 / 7)).epsilon(1e-15));
  CHECK(s.min == 2);
  CHECK(s.max == 9);

  const std::vector<double> one{3.5};
  CHECK(summarise(one).sd == 0);
  CHECK(summarise(one).mean == 3.5);
  const Summary empty = summarise({});
  CHECK(empty.n == 0);
  CHECK(std::isnan(empty.mean));
  CHECK(empty.sd == 0);

  const std::vector<double> bad{1, NAN};
  check_throws_naming([&] { summarise(bad); }, "summarise(x[1])");
}

TEST_CASE("the normal distribution and its quantile match known values") {
  CHECK(normal_cdf(0) == 0.5);
  // Phi(1.959963984540054) = 0.975 (mpmath).
  CHECK(normal_cdf(1.959963984540054) == doctest::Approx(0.975).epsilon(1e-15));
  CHECK(normal_cdf(-1) == doctest::Approx(0.15865525393145705).epsilon(1e-14));
  CHECK(normal_quantile(0.975) == doctest::Approx(1.959963984540054).epsilon(1e-13));
  CHECK(normal_quantile(0.025) == doctest::Approx(-1.959963984540054).epsilon(1e-13));
  CHECK(normal_quantile(0.5) == 0);
  CHECK(normal_quantile(0.0) == -INFINITY);
  CHECK(normal_quantile(1.0) == INFINITY);
  // The quantile inverts the cdf to ~1e-12 relative, deep into both tails.
  for (double p : {1e-300, 1e-100, 1e-20, 1e-8, 0.001, 0.1, 0.3, 0.49}) {
    CAPTURE(p);
    CHECK(normal_cdf(normal_quantile(p)) == rel(p, 1e-12));
    // Exact symmetry: for u >= 1/2, 1 - u is computed exactly (Sterbenz).
    const double u = 1 - p;
    if (u < 1) CHECK(normal_quantile(u) == -normal_quantile(1 - u));
  }
  check_throws_naming([] { normal_quantile(1.5); }, "normal_quantile(p)");
  check_throws_naming([] { normal_quantile(NAN); }, "normal_quantile(p)");
}

TEST_CASE("student_t_cdf matches closed forms and published quantiles") {
  // Table value: t_{0.975, 10} = 2.228138851986275 (mpmath), so cdf = 0.975; and
  // the rounded table entry 2.228 gives 0.9749941140914443.
  CHECK(student_t_cdf(2.228138851986275, 10) == doctest::Approx(0.975).epsilon(1e-13));
  CHECK(student_t_cdf(2.228, 10) == doctest::Approx(0.9749941140914443).epsilon(1e-13));
  // df = 1 is the Cauchy distribution: cdf(t) = 1/2 + atan(t) / pi, so cdf(1) = 3/4.
  CHECK(student_t_cdf(1, 1) == doctest::Approx(0.75).epsilon(1e-14));
  // df = 2: cdf(t) = 1/2 + t / (2 sqrt(2 + t^2)).
  // df = 3: cdf(t) = 1/2 + (t / (sqrt(3) (1 + t^2/3)) + atan(t / sqrt(3))) / pi.
  for (double t : {-30.0, -4.0, -1.5, -0.2, 0.0, 0.7, 2.0, 12.0}) {
    CAPTURE(t);
    const double pi = std::numbers::pi;
    CHECK(student_t_cdf(t, 1) == rel(0.5 + std::atan(t) / pi, 1e-13));
    CHECK(student_t_cdf(t, 2) == rel(0.5 + t / (2 * std::sqrt(2 + t * t)), 1e-13));
    const double s3 = std::sqrt(3.0);
    // (At t = -30 the df = 3 formula cancels 0.5 against 0.49996 and is itself off
    // by ~1e-12 relative; that point is checked against mpmath below instead.)
    if (t > -30)
      CHECK(student_t_cdf(t, 3) ==
            rel(0.5 + (t / (s3 * (1 + t * t / 3)) + std::atan(t / s3)) / pi, 1e-13));
  }
  // Non-integer, far-tail and large df (mpmath values).
  CHECK(student_t_cdf(1.3, 2.5) == doctest::Approx(0.8497566053646459).epsilon(1e-13));
  CHECK(student_t_cdf(-0.3, 30) == doctest::Approx(0.3831230526421764).epsilon(1e-13));
  CHECK(student_t_cdf(-30, 3) == rel(4.0676402135819797e-05, 1e-13));
  CHECK(student_t_cdf(-40, 5) == rel(9.205981085886477e-08, 1e-12));
  CHECK(student_t_cdf(-1e6, 0.5) == rel(3.207009754141988e-04, 1e-12));
  CHECK(1 - student_t_cdf(2, 1e6) == rel(1 - 0.9772497330743404, 1e-13));
  CHECK(student_t_cdf(-3, 1e8) == rel(1.3498983640187472e-03, 1e-13));
  CHECK(student_t_cdf(-10, 3000) == rel(1.7502445285322972e-23, 1e-13));
  CHECK(student_t_cdf(-1000, 100) == rel(3.959809303973926e-202, 1e-12));
  CHECK(student_t_cdf(INFINITY, 4) == 1);
  CHECK(student_t_cdf(-INFINITY, 4) == 0);
  CHECK(student_t_cdf(1.0, INFINITY) == normal_cdf(1.0));
}

TEST_CASE("student_t_quantile matches closed forms and published quantiles") {
  // df = 1 (Cauchy): q(p) = tan(pi (p - 1/2)); R: qt(0.975, 1) = 12.70620473617471.
  // df = 2: q(p) = (2p - 1) / sqrt(2 p (1 - p)); R: qt(0.975, 2) = 4.302652729749464.
  CHECK(student_t_quantile(0.975, 1) == rel(12.70620473617471, 1e-13));
  CHECK(student_t_quantile(0.975, 2) == rel(4.302652729749464, 1e-13));
  for (double p : {1e-10, 0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.9999}) {
    CAPTURE(p);
    const double pi = std::numbers::pi;
    // tan(pi (p - 1/2)) = -1 / tan(pi p): written on the side of the smaller tail,
    // where rounding p - 1/2 would not cost the closed form its digits.
    const double cauchy = p < 0.5 ? -1 / std::tan(pi * p) : 1 / std::tan(pi * (1 - p));
    CHECK(student_t_quantile(p, 1) == doctest::Approx(cauchy).epsilon(1e-12));
    CHECK(student_t_quantile(p, 2) ==
          doctest::Approx((2 * p - 1) / std::sqrt(2 * p * (1 - p))).epsilon(1e-12));
    // The quantile inverts the cdf, for a non-integer, a moderate and a large df.
    for (double df : {2.5, 30.0, 1e6}) {
      CAPTURE(df);
      CHECK(student_t_cdf(student_t_quantile(p, df), df) == rel(p, 1e-12));
    }
  }
  // Tables: t_{0.975, 10} = 2.228138851986275 (mpmath; R's qt gives 2.228139), the
  // value the t-test's 95% intervals use with 11 values.
  CHECK(student_t_quantile(0.975, 10) == rel(2.228138851986275, 1e-13));
  CHECK(student_t_quantile(1 - 0.975, 10) == -student_t_quantile(0.975, 10));
  CHECK(student_t_quantile(0.975, INFINITY) == rel(1.959963984540054, 1e-14));
  CHECK(student_t_quantile(0.0, 5) == -INFINITY);
  CHECK(student_t_quantile(1.0, 5) == INFINITY);
}

TEST_CASE("the distributions reject bad arguments with the project's messages") {
  // Boost.Math would throw std::domain_error naming its own template; these name
  // the project's function and argument, and say what to pass.
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  for (double df : {0.0, -1.0, nan, -inf}) {
    CAPTURE(df);
    check_throws_naming([&] { student_t_cdf(1, df); }, "student_t_cdf(df): expected degrees of freedom > 0");
    check_throws_naming([&] { student_t_quantile(0.5, df); }, "student_t_quantile(df)");
  }
  for (double p : {-0.1, 1.5, nan, inf}) {
    CAPTURE(p);
    check_throws_naming([&] { normal_quantile(p); }, "normal_quantile(p): expected a probability in [0, 1]");
    check_throws_naming([&] { student_t_quantile(p, 3); }, "student_t_quantile(p)");
  }
  // NaN in a cdf's argument is not an error: NaN in, NaN out, as in <cmath>.
  CHECK(std::isnan(normal_cdf(NAN)));
  CHECK(std::isnan(student_t_cdf(NAN, 3)));
  CHECK(normal_cdf(-INFINITY) == 0);
  CHECK(normal_cdf(INFINITY) == 1);
  // Far in the tail the value keeps its digits, no underflow to 0: Phi(-30) =
  // 4.906713927148187e-198 (mpmath). Phi(z) = erfc(-z / sqrt 2) / 2, and rounding
  // x = 30 / sqrt 2 (the quotient and sqrt 2 itself: |dx / x| <= 2.2e-16) moves
  // erfc(x) by a relative 2 x^2 |dx / x| = 2e-13, whatever erfc's own accuracy;
  // 3e-13 allows that and erfc's error (1.2e-13 measured).
  CHECK(normal_cdf(-30) == rel(4.906713927148187e-198, 3e-13));
}

TEST_CASE("Welch's t-test reproduces a textbook example") {
  // Wikipedia, "Welch's t-test", example 1 (two samples of 15): mean A1 = 20.82,
  // s^2 = 7.867428571, mean A2 = 22.986667, s^2 = 3.812666667.
  // se^2 = 7.867428571/15 + 3.812666667/15 = 0.778673016;
  // t = 2.166666667 / sqrt(0.778673016) = 2.455356398 (A2 - A1; the page reports -2.46 for A1 -
  // A2); df = 0.778673016^2 / (0.524495238^2/14 + 0.254177778^2/14) = 24.98852929; p =
  // I_{df/(df+t^2)}(df/2, 1/2) = 0.02137800146 (mpmath; the page reports 0.021).
  const std::vector<double> a1{27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1,
                               21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4};
  const std::vector<double> a2{27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0,
                               24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4};
  const TTest r = welch_t_test(a1, a2);
  CHECK(r.t == doctest::Approx(2.455356398286005).epsilon(1e-12));
  CHECK(r.df == doctest::Approx(24.98852929023141).epsilon(1e-12));
  CHECK(r.p == doctest::Approx(0.02137800146286703).epsilon(1e-11));
  const TTest swapped = welch_t_test(a2, a1);
  CHECK(swapped.t == -r.t);
  CHECK(swapped.p == r.p);
  // The test is scale-free; at 1e-100 the squared variances (~1e-400) of the textbook df
  // formula underflow (0 / 0), which must not reach the t distribution.
  std::vector<double> tiny1 = a1, tiny2 = a2;
  for (double& v : tiny1) v *= 1e-100;
  for (double& v : tiny2) v *= 1e-100;
  const TTest tiny = welch_t_test(tiny1, tiny2);
  CHECK(tiny.t == doctest::Approx(r.t).epsilon(1e-12));
  CHECK(tiny.df == doctest::Approx(r.df).epsilon(1e-12));
  CHECK(tiny.p == doctest::Approx(r.p).epsilon(1e-11));
}

TEST_CASE("Welch's t-test handles samples without variance and rejects bad input") {
  const std::vector<double> same{2, 2, 2}, higher{3, 3};
  const TTest equal = welch_t_test(same, same);
  CHECK(equal.t == 0);
  CHECK(equal.p == 1);
  CHECK(equal.df == 4);
  const TTest apart = welch_t_test(same, higher);
  CHECK(apart.t == INFINITY);
  CHECK(apart.p == 0);
  const std::vector<double> one{1};
  check_throws_naming([&] { welch_t_test(one, same); }, "welch_t_test(a)");
  const std::vector<double> inf{1, INFINITY};
  check_throws_naming([&] { welch_t_test(same, inf); }, "welch_t_test(b[1])");
}

TEST_CASE("mean_lift on a small case computed by hand") {
  // control {1,2,3}: mean 2, s^2 = 1; treatment {2,3,4,5}: mean 3.5, s^2 = 5/3.
  // lift = 3.5/2 - 1 = 0.75; var = (5/3)/(4*4) + 3.5^2 * 1 / (3*2^4) = 5/48 + 12.25/48
  // = 0.359375, se = 0.5994789404140899; 95% half-width = 1.959963984540054 * se.
  // Welch: t = 1.5 / sqrt(1/3 + 5/12) = sqrt(3), df = 0.75^2 / ((1/3)^2/2 + (5/12)^2/3)
  // = 243/49; p = 0.1442930430839438 (mpmath).
  const std::vector<double> c{1, 2, 3}, t{2, 3, 4, 5};
  const Lift r = mean_lift(c, t);
  CHECK(r.control == 2);
  CHECK(r.treatment == 3.5);
  CHECK(r.lift == 0.75);
  CHECK(r.n_control == 3);
  CHECK(r.n_treatment == 4);
  const double half = 1.959963984540054 * 0.5994789404140899;
  CHECK(r.ci_low == doctest::Approx(0.75 - half).epsilon(1e-13));
  CHECK(r.ci_high == doctest::Approx(0.75 + half).epsilon(1e-13));
  CHECK(r.p_value == doctest::Approx(0.1442930430839438).epsilon(1e-12));
  // A 90% interval is narrower by z_0.95 / z_0.975.
  const Lift r90 = mean_lift(c, t, 0.90);
  CHECK(r90.ci_high - r90.lift ==
        doctest::Approx(1.6448536269514722 * 0.5994789404140899).epsilon(1e-12));

  const std::vector<double> zero{-1, 1};
  check_throws_naming([&] { mean_lift(zero, t); }, "mean_lift(control)");
  check_throws_naming([&] { mean_lift(c, t, 1.0); }, "mean_lift(confidence)");
}

TEST_CASE("ratio_lift on a small case computed by hand") {
  // Control: num {1,2,3}, den {2,2,4}: R_c = 6/8 = 0.75; mean(num) = 2, mean(den) = 8/3,
  // s_num^2 = 1, s_den^2 = 4/3, cov = ((-1)(-2/3) + 0 + (1)(4/3)) / 2 = 1;
  // var(R_c) = (1 - 2*0.75*1 + 0.75^2 * 4/3) / (3 * (8/3)^2) = 0.25 / (64/3) = 3/256.
  // Treatment: num {2,2,5,3}, den {2,3,5,2}: R_t = 12/12 = 1; means 3 and 3,
  // s_num^2 = 6/3 = 2, s_den^2 = 6/3 = 2, cov = (1 + 0 + 4 + 0)/3 = 5/3;
  // var(R_t) = (2 - 2*5/3 + 2) / (4 * 9) = 1/54.
  // lift = 1/0.75 - 1 = 1/3; var(lift) = (1/54)/(9/16) + 1 * (3/256)/(81/256) = 8/243 + 9/243
  // = 17/243, se = 0.2644973492052907.
  // z = 0.25 / sqrt(1/54 + 3/256) = 0.25 / sqrt(418/13824) = 1.437701514895569,
  // p = erfc(z / sqrt 2) = 0.1505187630952179 (mpmath).
  const std::vector<double> nc{1, 2, 3}, dc{2, 2, 4}, nt{2, 2, 5, 3}, dt{2, 3, 5, 2};
  const Lift r = ratio_lift(nc, dc, nt, dt);
  CHECK(r.control == 0.75);
  CHECK(r.treatment == 1);
  CHECK(r.lift == doctest::Approx(1.0 / 3).epsilon(1e-15));
  const double half = 1.959963984540054 * 0.2644973492052907;
  CHECK(r.ci_low == doctest::Approx(1.0 / 3 - half).epsilon(1e-13));
  CHECK(r.ci_high == doctest::Approx(1.0 / 3 + half).epsilon(1e-13));
  CHECK(r.p_value == doctest::Approx(0.1505187630952179).epsilon(1e-12));
  CHECK(r.n_control == 3);
  CHECK(r.n_treatment == 4);

  const std::vector<double> zeros{0, 0, 0}, short_den{1, 1};
  check_throws_naming([&] { ratio_lift(nc, zeros, nt, dt); }, "ratio_lift(den_c)");
  check_throws_naming([&] { ratio_lift(nc, short_den, nt, dt); }, "ratio_lift(num_c, den_c)");
  check_throws_naming([&] { ratio_lift(zeros, dc, nt, dt); }, "ratio_lift(num_c)");
}

// Coverage: the interval should hold the true lift in 95% of replicates. Over 400
// independent replicates the count of hits is Binomial(400, 0.95); the central
// 99.9% band is [364, 393] (exact binomial: P(X < 364) = 0.00029, P(X > 393) = 0.00020).
// The delta method is asymptotic, but at these sample sizes (CV of the control mean
// ~1%) its coverage error is far below the band's width of +-7%.
TEST_CASE("mean_lift's 95% interval covers the true lift about 95% of the time") {
  mtf::Rng rng(mtf::derive_seed(20240601, mtf::Stream::kBenchmark, 1));
  boost::random::normal_distribution<double> control_dist(10.0, 2.0), treatment_dist(11.0, 3.0);
  const double true_lift = 11.0 / 10.0 - 1;
  int hits = 0;
  std::vector<double> c(200), t(150);
  for (int rep = 0; rep < 400; ++rep) {
    for (double& v : c) v = control_dist(rng);
    for (double& v : t) v = treatment_dist(rng);
    const Lift r = mean_lift(c, t);
    hits += r.ci_low <= true_lift && true_lift <= r.ci_high;
  }
  CHECK(hits >= 364);
  CHECK(hits <= 393);
}

TEST_CASE("ratio_lift's 95% interval covers the true lift about 95% of the time") {
  // Per user: plays = 1 + Poisson(9), likes ~ Binomial(plays, rate); the ratio
  // sum(likes)/sum(plays) estimates the rate, so the true lift is 0.12/0.10 - 1 = 0.2.
  // Same binomial band as above.
  mtf::Rng rng(mtf::derive_seed(20240601, mtf::Stream::kBenchmark, 2));
  boost::random::poisson_distribution<int> plays_dist(9.0);
  const double true_lift = 0.12 / 0.10 - 1;
  int hits = 0;
  std::vector<double> nc(300), dc(300), nt(300), dt(300);
  auto draw = [&](std::vector<double>& num, std::vector<double>& den, double rate) {
    for (std::size_t i = 0; i < num.size(); ++i) {
      const int plays = 1 + plays_dist(rng);
      boost::random::binomial_distribution<int> likes(plays, rate);
      den[i] = plays;
      num[i] = likes(rng);
    }
  };
  for (int rep = 0; rep < 400; ++rep) {
    draw(nc, dc, 0.10);
    draw(nt, dt, 0.12);
    const Lift r = ratio_lift(nc, dc, nt, dt);
    hits += r.ci_low <= true_lift && true_lift <= r.ci_high;
  }
  CHECK(hits >= 364);
  CHECK(hits <= 393);
}

TEST_CASE("cuped on a small case computed by hand") {
  // Pooled x = {1,2,3,4}, mean 2.5; pooled y = {2,4,7,9}, mean 5.5.
  // sxy = (-1.5)(-3.5) + (-0.5)(-1.5) + (0.5)(1.5) + (1.5)(3.5) = 12; sxx = 5; theta = 2.4.
  // y' = y - 2.4 (x - 2.5): {5.6, 5.2, 5.8, 5.4}.
  const std::vector<double> yc{2, 4}, xc{1, 2}, yt{7, 9}, xt{3, 4};
  const Cuped r = cuped(yc, xc, yt, xt);
  CHECK(r.theta == doctest::Approx(2.4).epsilon(1e-15));
  REQUIRE(r.control.size() == 2);
  REQUIRE(r.treatment.size() == 2);
  CHECK(r.control[0] == doctest::Approx(5.6).epsilon(1e-14));
  CHECK(r.control[1] == doctest::Approx(5.2).epsilon(1e-14));
  CHECK(r.treatment[0] == doctest::Approx(5.8).epsilon(1e-14));
  CHECK(r.treatment[1] == doctest::Approx(5.4).epsilon(1e-14));
  // Before: s^2 = 2 per arm, 2/2 + 2/2 = 2. After: s^2 = 0.08 per arm, 0.08. Reduction 0.96.
  CHECK(r.variance_reduction == doctest::Approx(0.96).epsilon(1e-13));

  const std::vector<double> flat{3, 3};
  check_throws_naming([&] { cuped(yc, flat, yt, flat); }, "cuped(x_c, x_t)");
  const std::vector<double> three{1, 2, 3};
  check_throws_naming([&] { cuped(yc, three, yt, xt); }, "cuped(y_c, x_c)");
}

TEST_CASE("cuped recovers theta for y = 2x + noise, reduces the variance and keeps the means") {
  // x ~ N(5, 1), y = 2x + e, e ~ N(0, 0.5^2), plus 1 in the treatment arm; 2000 users per arm.
  // theta = cov(y, x)/var(x) = 2; its standard error is 0.5 / sqrt(4000 * 1) = 0.008,
  // so 0.04 is 5 standard errors. The variance reduction is corr^2 = 4 / 4.25 = 0.941;
  // its estimate 1 - (~0.25)/(~4.25) has a standard deviation ~0.002 (relative sd of a
  // variance estimate sqrt(2/n) = 0.022 per arm), so 0.01 is 5 of them.
  mtf::Rng rng(mtf::derive_seed(20240601, mtf::Stream::kBenchmark, 3));
  boost::random::normal_distribution<double> x_dist(5.0, 1.0), noise(0.0, 0.5);
  std::vector<double> xc(2000), yc(2000), xt(2000), yt(2000);
  for (std::size_t i = 0; i < xc.size(); ++i) {
    xc[i] = x_dist(rng);
    yc[i] = 2 * xc[i] + noise(rng);
    xt[i] = x_dist(rng);
    yt[i] = 2 * xt[i] + noise(rng) + 1;
  }
  const Cuped r = cuped(yc, xc, yt, xt);
  CHECK(std::abs(r.theta - 2) < 0.04);
  CHECK(std::abs(r.variance_reduction - 4.0 / 4.25) < 0.01);
  // Means: the pooled mean is kept exactly, and each arm moves by theta times its
  // covariate's offset from the pooled mean (exact identities, up to rounding).
  const double pooled_before = (mean(yc) + mean(yt)) / 2,
               pooled_after = (mean(r.control) + mean(r.treatment)) / 2;
  CHECK(pooled_after == doctest::Approx(pooled_before).epsilon(1e-13));
  const double mx = (mean(xc) + mean(xt)) / 2;
  CHECK(mean(r.treatment) == doctest::Approx(mean(yt) - r.theta * (mean(xt) - mx)).epsilon(1e-13));
  // The adjusted difference estimates the true effect 1 with standard error
  // sqrt(2 * 0.25 / 2000) = 0.0158; 0.08 is 5 of them.
  CHECK(std::abs(mean(r.treatment) - mean(r.control) - 1) < 0.08);
  // ...and matches the definition of variance_reduction on the returned samples.
  auto var = [](const std::vector<double>& v) { return summarise(v).sd * summarise(v).sd; };
  const double before = var(yc) / 2000 + var(yt) / 2000,
               after = var(r.control) / 2000 + var(r.treatment) / 2000;
  CHECK(r.variance_reduction == doctest::Approx(1 - after / before).epsilon(1e-12));
}

TEST_CASE("kendall_tau_b on known small examples, with and without ties") {
  const std::vector<double> up{1, 2, 3, 4}, down{4, 3, 2, 1};
  CHECK(kendall_tau_b(up, up) == 1);
  CHECK(kendall_tau_b(up, down) == -1);
  // a = (1,2,2,3), b = (1,3,2,2). Pairs: (1,2) C, (1,3) C, (1,4) C, (2,3) tied in a,
  // (2,4) a up b down: D, (3,4) tied in b. n0 = 6, ties in a 1, in b 1:
  // tau_b = (3 - 1) / sqrt((6 - 1)(6 - 1)) = 0.4.
  const std::vector<double> a{1, 2, 2, 3}, b{1, 3, 2, 2};
  CHECK(kendall_tau_b(a, b) == doctest::Approx(0.4).epsilon(1e-15));
  CHECK(kendall_tau_b(b, a) == doctest::Approx(0.4).epsilon(1e-15));
  // Identical samples with ties: (1,1,2) vs itself: one pair tied in both, two concordant:
  // tau_b = 2 / sqrt((3 - 1)(3 - 1)) = 1.
  const std::vector<double> tied{1, 1, 2};
  CHECK(kendall_tau_b(tied, tied) == 1);
  // Undefined: fewer than two pairs, or every value of one side tied.
  const std::vector<double> single{1}, flat{5, 5, 5, 5};
  CHECK(std::isnan(kendall_tau_b(single, single)));
  CHECK(std::isnan(kendall_tau_b(flat, up)));
  CHECK(std::isnan(kendall_tau_b(up, flat)));
  check_throws_naming([&] { kendall_tau_b(up, tied); }, "kendall_tau_b(a, b)");
  const std::vector<double> with_nan{1, NAN, 3, 4};
  check_throws_naming([&] { kendall_tau_b(up, with_nan); }, "kendall_tau_b(b[1])");
}

TEST_CASE("kendall_tau_b agrees with the O(n^2) definition on random data with ties") {
  mtf::Rng rng(mtf::derive_seed(20240601, mtf::Stream::kBenchmark, 4));
  for (int trial = 0; trial < 20; ++trial) {
    const std::size_t n = 2 + rng.below(300);
    const std::uint32_t levels = 2 + rng.below(20);  // few levels: many ties
    std::vector<double> a(n), b(n);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = rng.below(levels);
      b[i] = 0.5 * a[i] + rng.below(levels);  // positively related
    }
    double concordant = 0, discordant = 0, tie_a = 0, tie_b = 0;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = i + 1; j < n; ++j) {
        const double s = (a[i] - a[j]) * (b[i] - b[j]);
        concordant += s > 0;
        discordant += s < 0;
        tie_a += a[i] == a[j];
        tie_b += b[i] == b[j];
      }
    }
    const double n0 = static_cast<double>(n) * static_cast<double>(n - 1) / 2;
    const double expected = (concordant - discordant) / std::sqrt((n0 - tie_a) * (n0 - tie_b));
    CAPTURE(trial);
    if (std::isnan(expected)) {
      CHECK(std::isnan(kendall_tau_b(a, b)));
    } else {
      CHECK(kendall_tau_b(a, b) == doctest::Approx(expected).epsilon(1e-12));
    }
  }
}
