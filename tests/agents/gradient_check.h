// Central-difference gradient checks shared by the network and loss tests.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "agents/nn/tensor.h"
#include "core/rng.h"

namespace mtf::agents::testing {

// Compares analytic gradients of a scalar loss with central differences, for a
// sample of the entries of each parameter. Float32 with h = 1e-2 gives a
// truncation error O(h^2 f''') ~ 1e-4 and a rounding error ~ 1e-7 |f| / h ~ 1e-4
// for losses of order 1, so a mismatch above 2e-3 + 1e-2 |g| is a real bug.
// Smooth (tanh) hidden layers are used so that no ReLU kink is crossed.
inline void check_gradients(const std::vector<nn::Param*>& params,
                            const std::function<double()>& loss_and_grad,
                            const std::function<double()>& loss_only, int per_param = 12) {
  loss_and_grad();
  std::vector<nn::Matrix> analytic;
  for (nn::Param* p : params) analytic.push_back(p->grad);
  Rng pick(99);
  const float h = 1e-2f;
  for (std::size_t k = 0; k < params.size(); ++k) {
    nn::Param* p = params[k];
    const int n = static_cast<int>(p->value.size());
    for (int t = 0; t < std::min(n, per_param); ++t) {
      const int i =
          n <= per_param ? t : static_cast<int>(pick.below(static_cast<std::uint32_t>(n)));
      const float old = p->value.data()[i];
      p->value.data()[i] = old + h;
      const double up = loss_only();
      p->value.data()[i] = old - h;
      const double down = loss_only();
      p->value.data()[i] = old;
      const double numeric = (up - down) / (2.0 * h);
      const double a = analytic[k].data()[i];
      INFO("param " << p->name << " entry " << i << " analytic " << a << " numeric " << numeric);
      CHECK(std::abs(a - numeric) <= 2e-3 + 1e-2 * std::abs(numeric));
    }
  }
}

// The same check for a loss of a plain matrix input x (every entry), with the
// analytic gradient given: used for the agents' loss functions, whose inputs
// are critic values, log-probabilities or values.
inline void check_input_gradient(nn::Matrix x, const nn::Matrix& analytic,
                                 const std::function<double(const nn::Matrix&)>& loss,
                                 float h = 1e-2f) {
  REQUIRE(analytic.rows() == x.rows());
  REQUIRE(analytic.cols() == x.cols());
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const float old = x.data()[i];
    x.data()[i] = old + h;
    const double up = loss(x);
    x.data()[i] = old - h;
    const double down = loss(x);
    x.data()[i] = old;
    const double numeric = (up - down) / (2.0 * h);
    const double a = analytic.data()[i];
    INFO("entry " << i << " analytic " << a << " numeric " << numeric);
    CHECK(std::abs(a - numeric) <= 2e-3 + 1e-2 * std::abs(numeric));
  }
}

}  // namespace mtf::agents::testing
