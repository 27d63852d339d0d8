// The ranker's fast exp / log / sigmoid against the standard library.
#include <doctest/doctest.h>

#include <cmath>

#include "core/fast_math.h"

using namespace mtf;

TEST_CASE("fast_exp is within 5e-6 relative error of std::exp on [-87, 87] and 7e-7 on [-10, 10]") {
  // Bounds: rounding x / ln 2 to float costs up to |x / ln 2| * 6e-8 * ln 2 relative
  // (6e-7 at |x| = 10, 5e-6 at 87), plus 1e-7 from the polynomial. Measured: 4e-6
  // and 6e-7 in a build without FMA contraction (MTF_NATIVE=OFF, or clang), 1.4e-6
  // and 3e-7 with it (GCC, -march=native); the bound must hold for both.
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -87.0f + 174.0f * static_cast<float>(i) / 200000.0f;
    const double want = std::exp(static_cast<double>(x));
    worst = std::fmax(worst, std::fabs(fast_exp(x) - want) / want);
  }
  CHECK(worst < 5e-6);
  double near = 0;
  for (int i = 0; i <= 20000; ++i) {
    const float x = -10.0f + 20.0f * static_cast<float>(i) / 20000.0f;
    const double want = std::exp(static_cast<double>(x));
    near = std::fmax(near, std::fabs(fast_exp(x) - want) / want);
  }
  CHECK(near < 7e-7);
  CHECK(fast_exp(-1000.0f) > 0.0f);            // clamped, no denormal or zero
  CHECK(std::isfinite(fast_exp(1000.0f)));     // clamped, no infinity
}

TEST_CASE("fast_log is within 5e-6 absolute error of std::log from 1e-20 to 1e20 and 3e-7 on [0.01, 10]") {
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const double x = std::pow(10.0, -20.0 + 40.0 * i / 200000.0);
    const float xf = static_cast<float>(x);
    worst = std::fmax(worst, std::fabs(fast_log(xf) - std::log(static_cast<double>(xf))));
  }
  CHECK(worst < 5e-6);
  double near = 0;
  for (int i = 0; i <= 20000; ++i) {
    const float x = 0.01f + 10.0f * static_cast<float>(i) / 20000.0f;
    near = std::fmax(near, std::fabs(fast_log(x) - std::log(static_cast<double>(x))));
  }
  CHECK(near < 3e-7);
  CHECK(fast_log(1.0f) == doctest::Approx(0.0).epsilon(1e-7));
  CHECK(std::isfinite(fast_log(0.0f)));
}

TEST_CASE("fast_sigmoid matches the logistic function") {
  for (float x = -30.0f; x <= 30.0f; x += 0.01f)
    CHECK(fast_sigmoid(x) == doctest::Approx(1.0 / (1.0 + std::exp(-static_cast<double>(x)))).epsilon(1e-6));
}
