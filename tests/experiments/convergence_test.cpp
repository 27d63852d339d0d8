// The convergence rule (experiments/convergence.h) on synthetic curves whose
// verdict is known: flat, rising, noisy within and beyond the oracle's
// intervals, falling; and the doubling checkpoint steps.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "experiments/convergence.h"

using namespace mtf::experiments;

namespace {

/// A curve of differences at steps 100, 200, 400, ... with one half-width.
std::vector<CheckpointValue> curve(const std::vector<double>& d, double half_width) {
  std::vector<CheckpointValue> c;
  std::int64_t step = 100;
  for (double x : d) {
    c.push_back({step, x, half_width});
    step *= 2;
  }
  return c;
}

}  // namespace

TEST_CASE("a flat curve converges, a short one cannot yet") {
  const ConvergenceRule rule;  // window 3, no tolerance
  CHECK(assess_curve(curve({-2.0, 1.0, 1.0, 1.0}, 0.1), rule) == CurveVerdict::kConverged);
  CHECK(assess_curve(curve({1.0, 1.0}, 0.1), rule) == CurveVerdict::kTooShort);
  CHECK(assess_curve({}, rule) == CurveVerdict::kTooShort);
}

TEST_CASE("a rising curve is improving until its last checkpoints agree") {
  const ConvergenceRule rule;
  // A saturating rise, 3 (1 - 2^-k): differences between the last three fall
  // below the half-width only at the end.
  std::vector<double> d;
  for (int k = 0; k < 10; ++k) d.push_back(3.0 * (1.0 - std::pow(2.0, -k)));
  const double hw = 0.05;
  std::vector<CurveVerdict> seen;
  for (std::size_t n = 3; n <= d.size(); ++n)
    seen.push_back(assess_curve(curve(std::vector<double>(d.begin(), d.begin() + static_cast<long>(n)), hw), rule));
  // 3, 1.5, 0.75, ... apart: improving while two checkpoints three apart differ
  // by more than 0.05, i.e. while 3 * (2^-(k-2) - 2^-k) = 2.25 * 2^-(k-2) > 0.05.
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const int last = static_cast<int>(i) + 2;  // index of the window's last checkpoint
    const double spread = d[static_cast<std::size_t>(last)] - d[static_cast<std::size_t>(last - 2)];
    INFO("last checkpoint " << last << ", spread " << spread);
    CHECK(seen[i] == (spread > hw ? CurveVerdict::kImproving : CurveVerdict::kConverged));
  }
  CHECK(seen.front() == CurveVerdict::kImproving);
  CHECK(seen.back() == CurveVerdict::kConverged);
}

TEST_CASE("noise inside the intervals is flat, noise beyond them is not") {
  const ConvergenceRule rule;
  // Alternating +-0.4 around 2 with half-widths 1: every two agree.
  CHECK(assess_curve(curve({0.0, 2.4, 1.6, 2.4, 1.6}, 1.0), rule) == CurveVerdict::kConverged);
  // The same with half-widths 0.5: 0.8 apart > 0.5, neither flat nor rising.
  CHECK(assess_curve(curve({0.0, 2.4, 1.6, 2.4, 1.6}, 0.5), rule) == CurveVerdict::kUnstable);
  // A tolerance of 0.3 makes 0.8 <= 0.5 + 0.3 agree again.
  CHECK(assess_curve(curve({0.0, 2.4, 1.6, 2.4, 1.6}, 0.5), ConvergenceRule{3, 0.3}) == CurveVerdict::kConverged);
  // One half-width wide enough decides a pair (the larger of the two counts).
  std::vector<CheckpointValue> c = curve({2.0, 2.0, 2.6}, 0.1);
  CHECK(assess_curve(c, rule) == CurveVerdict::kImproving);
  c[2].half_width = 0.7;
  c[1].half_width = 0.7;
  CHECK(assess_curve(c, rule) == CurveVerdict::kConverged);
}

TEST_CASE("a falling curve is unstable, and NaN never agrees") {
  const ConvergenceRule rule;
  CHECK(assess_curve(curve({3.0, 2.0, 1.0}, 0.1), rule) == CurveVerdict::kUnstable);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(assess_curve(curve({1.0, 1.0, nan}, 0.1), rule) == CurveVerdict::kUnstable);
  CHECK(assess_curve(curve({1.0, 1.0, 1.0}, nan), rule) == CurveVerdict::kUnstable);
  // A window of 2 looks at the last two only.
  CHECK(assess_curve(curve({0.0, 5.0, 5.05}, 0.1), ConvergenceRule{2, 0}) == CurveVerdict::kConverged);
  CHECK(assess_curve(curve({0.0, 5.0, 5.05}, 0.1), ConvergenceRule{3, 0}) == CurveVerdict::kImproving);
  CHECK_THROWS(assess_curve(curve({1.0}, 0.1), ConvergenceRule{1, 0}));
  CHECK_THROWS(assess_curve(curve({1.0}, 0.1), ConvergenceRule{3, -1}));
}

TEST_CASE("checkpoint steps double from the first and end at the cap") {
  CHECK(checkpoint_steps(500, 4000) == std::vector<std::int64_t>{500, 1000, 2000, 4000});
  CHECK(checkpoint_steps(500, 5000) == std::vector<std::int64_t>{500, 1000, 2000, 4000, 5000});
  CHECK(checkpoint_steps(500, 300) == std::vector<std::int64_t>{300});
  CHECK(checkpoint_steps(1, 1) == std::vector<std::int64_t>{1});
  CHECK(checkpoint_steps(1, 0).empty());
  CHECK_THROWS(checkpoint_steps(0, 10));
}

TEST_CASE("min_step: an early plateau that a later rise ends is not taken for convergence") {
  // BatchRL-MTF's curve on the small IntegratedRL-MTF scenario (docs/convergence.md):
  // flat to 1,600 steps, then up by 4.4 at 3,200, then flat again.
  const std::vector<double> d = {-0.57, -0.16, -1.24, 3.13, 3.61, 3.52};
  std::vector<CheckpointValue> c;
  for (std::size_t k = 0; k < d.size(); ++k) c.push_back({400LL << k, d[k], 1.1});
  const auto upto = [&](std::size_t n) { return std::vector<CheckpointValue>(c.begin(), c.begin() + static_cast<long>(n)); };
  ConvergenceRule from_start;  // min_step 0: the plateau's three checkpoints agree
  CHECK(assess_curve(upto(3), from_start) == CurveVerdict::kConverged);
  ConvergenceRule later;
  later.min_step = 1600;
  CHECK(assess_curve(upto(3), later) == CurveVerdict::kTooShort);   // only 1,600 counts
  CHECK(assess_curve(upto(4), later) == CurveVerdict::kTooShort);   // 1,600 and 3,200
  CHECK(assess_curve(upto(5), later) == CurveVerdict::kImproving);  // 1,600 .. 6,400: the rise
  CHECK(assess_curve(upto(6), later) == CurveVerdict::kConverged);  // 3,200 .. 12,800: flat
}
