// Constant-action and residual-network policies of the online learners.
#include "agents/online/online_policies.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace mtf::agents {
namespace {

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

FixedActionPolicy::FixedActionPolicy(std::string name, std::vector<float> action)
    : name_(std::move(name)), action_(std::move(action)) {
  for ([[maybe_unused]] float a : action_) assert(a >= -1.0f && a <= 1.0f);
}

void FixedActionPolicy::act(std::span<const float>, std::span<float> action, Rng&,
                            ActionInfo* info) const {
  std::copy(action_.begin(), action_.end(), action.begin());
  deterministic_info(action, info);
}

ResidualMlpPolicy::ResidualMlpPolicy(std::string name, PolicyPtr baseline,
                                     const ResidualNetShape& shape, std::span<const float> params,
                                     std::span<const float> centre,
                                     std::span<const float> half_width)
    : name_(std::move(name)),
      baseline_(std::move(baseline)),
      shape_(shape),
      params_(params.begin(), params.end()),
      centre_(centre.begin(), centre.end()),
      half_width_(half_width.begin(), half_width.end()) {
  const int S = shape.state_dim, H = shape.hidden, d = shape.action_dim;
  assert(baseline_ && baseline_->action_dim() == d);
  assert(H >= 1 && H <= ResidualNetShape::kMaxHidden);
  assert(static_cast<int>(params.size()) == shape.param_count());
  assert(centre.size() == half_width.size() &&
         (centre.empty() || static_cast<int>(centre.size()) == S));
  const float* p = params.data();
  w1_.assign(p, p + H * S);
  p += H * S;
  b1_.assign(p, p + H);
  p += H;
  w2_.assign(p, p + d * H);
  p += d * H;
  b2_.assign(p, p + d);
  if (!centre.empty()) {
    // W1 ((s - c) / h) + b1 = (W1 / h) s + (b1 - W1 (c / h)).
    for (int j = 0; j < H; ++j)
      for (int i = 0; i < S; ++i) {
        float& w = w1_[static_cast<std::size_t>(j * S + i)];
        w /= half_width[static_cast<std::size_t>(i)];
        b1_[static_cast<std::size_t>(j)] -= w * centre[static_cast<std::size_t>(i)];
      }
  }
}

void ResidualMlpPolicy::residual(std::span<const float> state, std::span<float> out) const {
  const int S = shape_.state_dim, H = shape_.hidden, d = shape_.action_dim;
  assert(static_cast<int>(state.size()) >= S && static_cast<int>(out.size()) == d);
  std::array<float, ResidualNetShape::kMaxHidden> h;
  for (int j = 0; j < H; ++j) {
    const float* w = w1_.data() + static_cast<std::ptrdiff_t>(j) * S;
    float z = b1_[static_cast<std::size_t>(j)];
    for (int i = 0; i < S; ++i) z += w[i] * state[static_cast<std::size_t>(i)];
    h[static_cast<std::size_t>(j)] = std::tanh(z);
  }
  for (int k = 0; k < d; ++k) {
    const float* w = w2_.data() + static_cast<std::ptrdiff_t>(k) * H;
    float z = b2_[static_cast<std::size_t>(k)];
    for (int j = 0; j < H; ++j) z += w[j] * h[static_cast<std::size_t>(j)];
    out[static_cast<std::size_t>(k)] = shape_.scale * std::tanh(z);
  }
}

void ResidualMlpPolicy::act(std::span<const float> state, std::span<float> action, Rng& rng,
                            ActionInfo* info) const {
  const int d = shape_.action_dim;
  std::array<float, 64> r;
  assert(d <= static_cast<int>(r.size()));
  baseline_->act(state, action, rng, nullptr);
  residual(state, std::span<float>(r.data(), static_cast<std::size_t>(d)));
  for (int k = 0; k < d; ++k) {
    float& a = action[static_cast<std::size_t>(k)];
    a = std::clamp(a + r[static_cast<std::size_t>(k)], -1.0f, 1.0f);
  }
  deterministic_info(action, info);
}

nlohmann::json policy_to_json(const PolicyPtr& policy, const PolicyPtr& baseline) {
  if (policy == baseline) return {{"type", "baseline"}};
  if (const auto* f = dynamic_cast<const FixedActionPolicy*>(policy.get()))
    return {{"type", "fixed_action"}, {"name", f->name()}, {"action", f->action()}};
  if (const auto* r = dynamic_cast<const ResidualMlpPolicy*>(policy.get()))
    return {{"type", "residual_mlp"}, {"name", r->name()},         {"state_dim", r->shape().state_dim},
            {"hidden", r->shape().hidden}, {"action_dim", r->shape().action_dim}, {"scale", r->shape().scale},
            {"params", r->params()},      {"centre", r->centre()},   {"half_width", r->half_width()}};
  throw std::invalid_argument("policy_to_json: " + (policy ? policy->name() : std::string("null")) +
                              " is not a policy an online learner deploys");
}

PolicyPtr policy_from_json(const nlohmann::json& j, const PolicyPtr& baseline) {
  try {
    const std::string type = j.at("type").get<std::string>();
    if (type == "baseline") return baseline;
    if (type == "fixed_action") {
      const auto action = j.at("action").get<std::vector<float>>();
      for (float a : action)
        if (!(a >= -1.0f && a <= 1.0f)) throw std::invalid_argument("an action outside [-1, 1]");
      return std::make_shared<FixedActionPolicy>(j.at("name").get<std::string>(), action);
    }
    if (type == "residual_mlp") {
      ResidualNetShape shape;
      shape.state_dim = j.at("state_dim").get<int>();
      shape.hidden = j.at("hidden").get<int>();
      shape.action_dim = j.at("action_dim").get<int>();
      shape.scale = j.at("scale").get<float>();
      const auto params = j.at("params").get<std::vector<float>>();
      const auto centre = j.at("centre").get<std::vector<float>>();
      const auto half_width = j.at("half_width").get<std::vector<float>>();
      if (shape.hidden < 1 || shape.hidden > ResidualNetShape::kMaxHidden || shape.state_dim < 1 ||
          !baseline || shape.action_dim != baseline->action_dim() ||
          static_cast<int>(params.size()) != shape.param_count() || centre.size() != half_width.size() ||
          (!centre.empty() && static_cast<int>(centre.size()) != shape.state_dim))
        throw std::invalid_argument("dimensions that do not fit together");
      return std::make_shared<ResidualMlpPolicy>(j.at("name").get<std::string>(), baseline, shape, params,
                                                 centre, half_width);
    }
    throw std::invalid_argument("unknown type " + type);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("policy_from_json: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("policy_from_json: ") + e.what());
  }
}

}  // namespace mtf::agents
