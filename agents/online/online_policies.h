// The policies online learners deploy: one constant action for every user (BO,
// grid search), and the production baseline plus a small network's bounded
// residual (ES). Both are immutable once built, so act() is safe to call from
// many simulation threads at once, and neither allocates in act().
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/policy.h"
#include "core/state_features.h"

namespace mtf::agents {

/// The same action for every state (what BO and grid search search over).
/// Deterministic: act() reports its own action as the baseline and log density
/// +infinity, like the simulator's ConstantPolicy.
class FixedActionPolicy final : public Policy {
 public:
  /// `action` must lie in [-1, 1]^d (asserted); `name` is what name() returns.
  FixedActionPolicy(std::string name, std::vector<float> action);
  std::string name() const override { return name_; }
  int action_dim() const override { return static_cast<int>(action_.size()); }
  void act(std::span<const float> state, std::span<float> action, Rng& rng,
           ActionInfo* info) const override;
  const std::vector<float>& action() const { return action_; }

 private:
  std::string name_;
  std::vector<float> action_;
};

/// Layout and scale of ES's residual network: state (S) -> hidden (H, tanh) -> d.
/// Parameters form one flat vector, in this order: W1 (H x S, row-major),
/// b1 (H), W2 (d x H, row-major), b2 (d).
struct ResidualNetShape {
  int state_dim = 0;   ///< S
  int hidden = 8;      ///< H, at most kMaxHidden
  int action_dim = 0;  ///< d
  float scale = 0.3f;  ///< the residual's bound per dimension (action units)
  static constexpr int kMaxHidden = 64;
  /// Number of parameters: H * S + H + d * H + d.
  int param_count() const { return hidden * state_dim + hidden + action_dim * hidden + action_dim; }
};

/// ES's deployed policy (IntegratedRL-MTF's ES benchmark, made residual on the
/// production rule so that zero output parameters reproduce it exactly):
///   a(s) = clip(mu_bp(s) + scale * tanh(W2 tanh(W1 z(s) + b1) + b2), -1, 1),
/// z(s) = (s - centre) / half_width per feature (the fixed scaling; pass empty
/// vectors for none). Deterministic: act() reports its own action as the
/// baseline and log density +infinity. act() costs one call of the baseline
/// plus H * (S + d) multiply-adds and H + d tanh.
class ResidualMlpPolicy final : public Policy {
 public:
  /// params: ResidualNetShape::param_count() values; centre and half_width:
  /// S values each, or both empty. The scaling is folded into the first layer.
  ResidualMlpPolicy(std::string name, PolicyPtr baseline, const ResidualNetShape& shape,
                    std::span<const float> params, std::span<const float> centre,
                    std::span<const float> half_width);
  std::string name() const override { return name_; }
  int action_dim() const override { return shape_.action_dim; }
  void act(std::span<const float> state, std::span<float> action, Rng& rng,
           ActionInfo* info) const override;
  /// The residual scale * tanh(net(s)) alone (before adding mu_bp and clipping),
  /// into `out` (size d). For tests and diagnostics.
  void residual(std::span<const float> state, std::span<float> out) const;
  const ResidualNetShape& shape() const { return shape_; }
  /// The constructor's arguments, as given (for saving the policy).
  const std::vector<float>& params() const { return params_; }
  const std::vector<float>& centre() const { return centre_; }
  const std::vector<float>& half_width() const { return half_width_; }

 private:
  std::string name_;
  PolicyPtr baseline_;
  ResidualNetShape shape_;
  std::vector<float> params_, centre_, half_width_;
  std::vector<float> w1_, b1_, w2_, b2_;  // w1_, b1_ with the state scaling folded in
};

/// A policy an online learner deploys (best()), as JSON that policy_from_json
/// turns back into the same policy, to the bit: `baseline` itself, a
/// FixedActionPolicy or a ResidualMlpPolicy on `baseline`. Any other policy
/// throws std::invalid_argument.
nlohmann::json policy_to_json(const PolicyPtr& policy, const PolicyPtr& baseline);
/// The inverse of policy_to_json; throws std::invalid_argument on a malformed object.
PolicyPtr policy_from_json(const nlohmann::json& j, const PolicyPtr& baseline);

}  // namespace mtf::agents
