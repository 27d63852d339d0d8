// Fusion: the published formulas against hand-computed values, and the action mapping.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "sim/fusion.h"

using namespace mtf;

namespace {
FusionParams two_dims(FusionForm form) {
  FusionParams p;
  p.form = form;
  for (int t = 0; t < kNumTasks; ++t) {
    p.fixed_weight[t] = 0.0;
    p.fixed_bias[t] = 1.0;
  }
  p.dims = {FusionDim{Task::kPlay, false, 0.0, 2.0}, FusionDim{Task::kValid, true, 0.1, 0.5}};
  return p;
}
}  // namespace

TEST_CASE("an action maps linearly onto each dimension's range and clips outside [-1, 1]") {
  const FusionParams p = two_dims(FusionForm::kProduct);
  std::vector<float> a = {-1.0f, 1.0f};
  FusionWeights w = weights_from_action(p, a);
  CHECK(w.weight[0] == doctest::Approx(0.0));
  CHECK(w.bias[1] == doctest::Approx(0.5));
  a = {0.5f, 0.0f};
  w = weights_from_action(p, a);
  CHECK(w.weight[0] == doctest::Approx(1.5));  // 0 + (0.5 + 1) / 2 * 2
  CHECK(w.bias[1] == doctest::Approx(0.3));
  a = {3.0f, -7.0f};
  w = weights_from_action(p, a);
  CHECK(w.weight[0] == doctest::Approx(2.0));
  CHECK(w.bias[1] == doctest::Approx(0.1));
  CHECK(w.weight[2] == 0.0f);  // fixed terms untouched
  CHECK(w.bias[2] == 1.0f);
  const std::vector<float> back = action_from_weights(p, weights_from_action(p, std::vector<float>{0.25f, -0.5f}));
  CHECK(back[0] == doctest::Approx(0.25));
  CHECK(back[1] == doctest::Approx(-0.5));
}

TEST_CASE("Formula 1 of IntegratedRL-MTF is the product of (pred + bias)^pow") {
  FusionWeights w;
  w.weight = {1.0f, 0.5f, 2.0f, 0.0f, 0.0f, 0.0f, 0.0f, -1.0f};
  w.bias = {0.0f, 0.25f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.5f};
  const std::vector<double> pred = {0.5, 0.75, 1.0, 0.3, 0.2, 0.1, 0.05, 0.5};
  // 0.5^1 * (0.75 + 0.25)^0.5 * (1 + 1)^2 * 1 * 1 * 1 * 1 * (0.5 + 0.5)^-1 = 0.5 * 1 * 4 * 1 = 2
  CHECK(product_score(pred, w) == doctest::Approx(2.0));
  w.weight[7] = -2.0f;
  w.bias[7] = 0.0f;  // (0.5)^-2 = 4
  CHECK(product_score(pred, w) == doctest::Approx(8.0));
}

TEST_CASE("Eq. 1 of BatchRL-MTF is the sum of alpha log(o + beta)") {
  FusionWeights w;
  w.weight = {2.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  w.bias = {0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<double> pred = {std::exp(1.0), std::exp(2.0) - 1.0, 1, 1, 1, 1, 1, 1};
  // 2 * log(e) + 1 * log(e^2) = 4 (terms with alpha 0 add nothing)
  CHECK(log_sum_score(pred, w) == doctest::Approx(4.0));
}

TEST_CASE("Formula 1 and Eq. 1 rank candidates identically (log is monotone)") {
  FusionWeights w;
  w.weight = {0.7f, 1.1f, 0.4f, 0.3f, 0.2f, 0.1f, 0.1f, -0.6f};
  w.bias = {0.05f, 0.02f, 0.1f, 0.02f, 0.01f, 0.01f, 0.01f, 0.05f};
  const std::vector<std::vector<double>> cands = {
      {0.5, 0.3, 0.4, 0.1, 0.02, 0.01, 0.01, 0.4}, {0.8, 0.2, 0.2, 0.05, 0.01, 0.0, 0.0, 0.3},
      {0.3, 0.25, 0.9, 0.2, 0.05, 0.02, 0.01, 0.6}};
  for (std::size_t a = 0; a < cands.size(); ++a)
    for (std::size_t b = 0; b < cands.size(); ++b) {
      const bool by_product = product_score(cands[a], w) > product_score(cands[b], w);
      const bool by_log = log_sum_score(cands[a], w) > log_sum_score(cands[b], w);
      CHECK(by_product == by_log);
    }
  CHECK(std::log(product_score(cands[0], w)) == doctest::Approx(log_sum_score(cands[0], w)));
}

TEST_CASE("action dimensions are named by term and task") {
  FusionParams p = two_dims(FusionForm::kProduct);
  CHECK(action_names(p) == std::vector<std::string>{"pow_play", "bias_valid"});
  p.form = FusionForm::kLogSum;
  CHECK(action_names(p) == std::vector<std::string>{"alpha_play", "beta_valid"});
}
