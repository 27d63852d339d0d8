// Constant and baseline policies (see policies.h).
#include "sim/policies.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "sim/exploration.h"
#include "sim/state_features.h"

namespace mtf {
namespace {

int feature(std::string_view name) {
  const int i = state_feature_index(name);
  assert(i >= 0 && "unknown state feature");
  return i;
}

void deterministic_info(std::span<const float> action, ActionInfo* info) {
  if (info == nullptr) return;
  // mu_bp of a deterministic policy is its own action; its density is a point mass.
  if (info->baseline.size() == action.size()) {
    std::copy(action.begin(), action.end(), info->baseline.begin());
    info->has_baseline = true;
  }
  info->log_density = std::numeric_limits<double>::infinity();
}

}  // namespace

PolicyPtr around_policy(const PolicySpec& spec, const Scenario& scenario) {
  if (spec.around.empty()) return std::make_shared<BaselinePolicy>(scenario.fusion);
  if (!is_deterministic(spec.around[0].kind))
    throw ScenarioError(
        "policy \"around\": expected a deterministic policy (constant or baseline)");
  return make_policy(spec.around[0], scenario);
}

void ConstantPolicy::act(std::span<const float>, std::span<float> action, Rng&,
                         ActionInfo* info) const {
  std::copy(action_.begin(), action_.end(), action.begin());
  deterministic_info(action, info);
}

FusionWeights BaselinePolicy::weights(std::span<const float> s) const {
  static const int kWatch = feature("hist_watch_per_play");
  static const int kLike = feature("hist_like_rate");
  static const int kShare = feature("hist_share_rate");
  static const int kFinish = feature("hist_finish_rate");
  static const int kSkip = feature("hist_skip_rate");
  static const int kFill = feature("hist_fill");
  FusionWeights w;
  for (int t = 0; t < kNumTasks; ++t) {
    w.weight[t] = static_cast<float>(fusion_.fixed_weight[t]);
    w.bias[t] = static_cast<float>(fusion_.fixed_bias[t]);
  }
  // With little history the rule falls back to population-wide weights.
  const float conf = s[kFill];
  auto set = [&](Task t, float v) { w.weight[static_cast<int>(t)] = v; };
  set(Task::kPlay, 0.6f);
  set(Task::kValid, 1.0f);
  set(Task::kWatchTime, 0.4f + conf * 0.5f * std::min(s[kWatch], 1.5f));
  set(Task::kFinish, 0.3f + conf * 0.6f * s[kFinish]);
  set(Task::kLike, 0.3f + conf * 0.8f * s[kLike]);
  set(Task::kShare, 0.2f + conf * 0.6f * s[kShare]);
  set(Task::kComment, 0.2f + conf * 0.4f * s[kShare]);
  set(Task::kSkip, -0.4f - conf * 0.6f * s[kSkip]);
  return w;
}

void BaselinePolicy::act(std::span<const float> state, std::span<float> action, Rng&,
                         ActionInfo* info) const {
  action_from_weights(fusion_, weights(state), action);
  deterministic_info(action, info);
}

PolicyPtr make_policy(const PolicySpec& spec, const Scenario& scenario, const AgentLoader& load_agent) {
  switch (spec.kind) {
    case PolicyKind::kAgent:
      if (!load_agent)
        throw ScenarioError("policy \"agent\" (" + spec.path +
                            "): agents are loaded by the experiments floor; build the group policies with "
                            "experiments::group_policies and pass them to the Simulator");
      return load_agent(spec, scenario);
    case PolicyKind::kConstant: {
      std::vector<float> a(spec.action.begin(), spec.action.end());
      return std::make_shared<ConstantPolicy>(std::move(a));
    }
    case PolicyKind::kBaseline:
      return std::make_shared<BaselinePolicy>(scenario.fusion);
    case PolicyKind::kGaussian:
      return std::make_shared<GaussianNoisePolicy>(around_policy(spec, scenario), spec.sigma);
    case PolicyKind::kRandom:
      return std::make_shared<UniformRandomPolicy>(scenario.action_dim(),
                                                   around_policy(spec, scenario));
    case PolicyKind::kBoundedUniform: {
      PolicyPtr base = around_policy(spec, scenario);
      if (spec.bound.size() == 1)
        return std::make_shared<BoundedUniformPolicy>(base, spec.bound[0]);
      return std::make_shared<BoundedUniformPolicy>(base, spec.bound);
    }
  }
  throw ScenarioError("unknown policy kind");
}

}  // namespace mtf
