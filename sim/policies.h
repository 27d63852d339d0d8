// The simulator's own policies: a constant action, and the hand-written
// personalised "production baseline" (a rule on the state) that later serves
// as mu_bp for exploration and for IntegratedRL-MTF's bounds.
#pragma once

#include <functional>

#include <vector>

#include "sim/fusion.h"
#include "core/policy.h"
#include "sim/scenario.h"

namespace mtf {

class ConstantPolicy final : public Policy {
 public:
  explicit ConstantPolicy(std::vector<float> action) : action_(std::move(action)) {}
  std::string name() const override { return "constant"; }
  int action_dim() const override { return static_cast<int>(action_.size()); }
  void act(std::span<const float> state, std::span<float> action, Rng& rng,
           ActionInfo* info) const override;

 private:
  std::vector<float> action_;
};

/// The production baseline: fusion weights set by a rule on observable history
/// (users who watch long get more watch-time weight, interactors more interaction
/// weight, skippers a stronger skip penalty), then mapped to the scenario's action
/// space. Decent, deliberately not optimal: it ignores fatigue within a session
/// and the clickbait trade-off.
class BaselinePolicy final : public Policy {
 public:
  explicit BaselinePolicy(const FusionParams& fusion) : fusion_(fusion) {}
  std::string name() const override { return "baseline"; }
  int action_dim() const override { return static_cast<int>(fusion_.dims.size()); }
  void act(std::span<const float> state, std::span<float> action, Rng& rng,
           ActionInfo* info) const override;
  /// The rule's fusion weights for a state (exposed for tests and documentation).
  FusionWeights weights(std::span<const float> state) const;

 private:
  FusionParams fusion_;
};

/// Builds the policy a group's spec names (exploration kinds wrap the policy
/// their `around` spec names, the BaselinePolicy when it is empty). Throws
/// ScenarioError for a spec the parser would have rejected (a stochastic
/// "around") and std::invalid_argument for out-of-range parameters.
/// Agent policies (kind kAgent) are loaded by `load_agent`, which the floors
/// above the simulator provide (experiments/agent_refs.h: group_policies);
/// without it such a spec throws ScenarioError.
using AgentLoader = std::function<PolicyPtr(const PolicySpec& spec, const Scenario& scenario)>;
PolicyPtr make_policy(const PolicySpec& spec, const Scenario& scenario, const AgentLoader& load_agent = {});

/// The deterministic policy an exploration spec is around: its `around`
/// policy, the BaselinePolicy when that is empty (a progressive group's first
/// round explores around it). Throws ScenarioError for a stochastic `around`.
PolicyPtr around_policy(const PolicySpec& spec, const Scenario& scenario);

}  // namespace mtf
