// Fusion: from an action in [-1, 1]^d to fusion weights, and from MTL
// predictions to one ranking score.
//
//   IntegratedRL-MTF Formula 1:  final_score = prod_i (pred_i + bias_i)^pow_i
//   BatchRL-MTF Eq. 1:      f(o | alpha) = sum_i alpha_i log(o_i + beta_i)
//
// Formula 1 is a monotone transform of sum_i pow_i log(pred_i + bias_i), so the
// ranker ranks both forms by the log-space sum (same order, no overflow); the
// scalar functions below compute each published form exactly, for tests and
// for users who want the published values.
#pragma once

#include <array>
#include <span>
#include <string>
#include <vector>

#include "sim/scenario.h"

namespace mtf {

struct FusionWeights {
  std::array<float, kNumTasks> weight{};  ///< pow_i (Formula 1) or alpha_i (Eq. 1)
  std::array<float, kNumTasks> bias{};    ///< bias_i (Formula 1) or beta_i (Eq. 1)
};

/// Maps each action component a_j in [-1, 1] linearly onto its dimension's range
/// [lo, hi] (values outside [-1, 1] are clipped first); terms not in the action
/// keep their fixed values.
FusionWeights weights_from_action(const FusionParams& p, std::span<const float> action);

/// The action that maps to the given weight on every dimension (inverse of the
/// above; weights outside a dimension's range give -1 or 1).
std::vector<float> action_from_weights(const FusionParams& p, const FusionWeights& w);
/// The same, written into `out` (size d) without allocating.
void action_from_weights(const FusionParams& p, const FusionWeights& w, std::span<float> out);

/// IntegratedRL-MTF Formula 1, exactly: prod_i (pred_i + bias_i)^pow_i.
double product_score(std::span<const double> pred, const FusionWeights& w);
/// BatchRL-MTF Eq. 1, exactly: sum_i alpha_i log(o_i + beta_i).
double log_sum_score(std::span<const double> pred, const FusionWeights& w);

/// Names of the action dimensions, e.g. "pow_play", "bias_watch_time", "alpha_like".
std::vector<std::string> action_names(const FusionParams& p);

}  // namespace mtf
