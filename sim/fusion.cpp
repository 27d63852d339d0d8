// Fusion weights and scores (see fusion.h).
#include "sim/fusion.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace mtf {

FusionWeights weights_from_action(const FusionParams& p, std::span<const float> action) {
  assert(action.size() == p.dims.size());
  FusionWeights w;
  for (int t = 0; t < kNumTasks; ++t) {
    w.weight[t] = static_cast<float>(p.fixed_weight[t]);
    w.bias[t] = static_cast<float>(p.fixed_bias[t]);
  }
  for (std::size_t j = 0; j < p.dims.size(); ++j) {
    const FusionDim& d = p.dims[j];
    const double a = std::clamp(static_cast<double>(action[j]), -1.0, 1.0);
    const float v = static_cast<float>(d.lo + (a + 1.0) * 0.5 * (d.hi - d.lo));
    (d.is_bias ? w.bias : w.weight)[static_cast<int>(d.task)] = v;
  }
  return w;
}

void action_from_weights(const FusionParams& p, const FusionWeights& w, std::span<float> out) {
  assert(out.size() == p.dims.size());
  for (std::size_t j = 0; j < p.dims.size(); ++j) {
    const FusionDim& d = p.dims[j];
    const double v = (d.is_bias ? w.bias : w.weight)[static_cast<int>(d.task)];
    out[j] = static_cast<float>(std::clamp(2.0 * (v - d.lo) / (d.hi - d.lo) - 1.0, -1.0, 1.0));
  }
}

std::vector<float> action_from_weights(const FusionParams& p, const FusionWeights& w) {
  std::vector<float> a(p.dims.size());
  action_from_weights(p, w, a);
  return a;
}

double product_score(std::span<const double> pred, const FusionWeights& w) {
  double s = 1.0;
  for (int t = 0; t < kNumTasks; ++t) s *= std::pow(pred[t] + w.bias[t], static_cast<double>(w.weight[t]));
  return s;
}

double log_sum_score(std::span<const double> pred, const FusionWeights& w) {
  double s = 0.0;
  for (int t = 0; t < kNumTasks; ++t) s += w.weight[t] * std::log(pred[t] + w.bias[t]);
  return s;
}

std::vector<std::string> action_names(const FusionParams& p) {
  std::vector<std::string> names;
  const bool product = p.form == FusionForm::kProduct;
  for (const FusionDim& d : p.dims) {
    const char* term = d.is_bias ? (product ? "bias_" : "beta_") : (product ? "pow_" : "alpha_");
    names.push_back(term + std::string(kTaskNames[static_cast<int>(d.task)]));
  }
  return names;
}

}  // namespace mtf
