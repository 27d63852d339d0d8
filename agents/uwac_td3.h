// UWAC+TD3 (Wu et al. 2021, "Uncertainty Weighted Actor-Critic"), the variant
// BatchRL-MTF compares: TD3 whose critic and actor losses are weighted per sample
// by clamp(exp(-beta * Var[Q]), weight_min, weight_max), Var from MC dropout.
// Everything else (targets, smoothing, delays, file layout) is Td3's.
#pragma once

#include "agents/td3.h"

namespace mtf::agents {

/// UWAC's per-sample weights (Wu et al. 2021, Eqs. 8, 9): for each column of
/// `variance` (critics x B, MC-dropout variances of Q), clamp(exp(-beta * v),
/// wmin, wmax) with v the variance averaged over the critics. Returns 1 x B.
RowVector uwac_weights(const ConstRef& variance, float beta, float wmin, float wmax);

class UwacTd3 final : public Td3 {
 public:
  static constexpr const char* kName = "uwac_td3";
  static nlohmann::json defaults();
  UwacTd3(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

  /// The weights the actor loss would give the pairs (raw states S x B,
  /// actions A x B): uwac_weights of the online critics' MC-dropout variance
  /// with mc_samples passes whose masks come from `rng`. In (0, 1] with the
  /// default clamp [0, 1.5] (exp(-beta v) <= 1); low where the critics disagree
  /// with themselves, i.e. away from the data.
  RowVector uncertainty_weights(const ConstRef& states, const ConstRef& actions, Rng& rng) const;
  /// MC-dropout moments of the online critics at (raw states, actions) over
  /// `samples` (>= 2) passes with masks from `rng`: mean and variance, critics x B.
  /// The mean is the value UWAC's own targets bootstrap from; it differs from
  /// q_values() (dropout off) by the nonlinearity's response to dropout.
  void q_moments(const ConstRef& states, const ConstRef& actions, int samples, Rng& rng,
                 Matrix& mean, Matrix& variance) const;

 private:
  bool bootstrap(const ConstRef& target_input, RowVector& value, RowVector& weight) override;
  bool actor_weights(const ConstRef& input, RowVector& weight) override;
  Rng* dropout_rng() override { return &noise_rng_; }  // dropout stays on while training

  float beta_, wmin_, wmax_;
  int samples_;
  nn::MlpWorkspace ws_mc_;
  Matrix mean_, var_;
};

}  // namespace mtf::agents
