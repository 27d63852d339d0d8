// Shared fixtures for simulator tests: the quickstart world at a size a test
// can afford, and small policies used to probe the model.
#pragma once

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include "sim/policies.h"
#include "sim/scenario.h"
#include "sim/simulator.h"
#include "sim/state_features.h"

namespace mtf::test {

inline std::filesystem::path source_dir() { return MTF_SOURCE_DIR; }

/// scenarios/quickstart.json with `users` users, `days` days and one group under
/// the production baseline; `segment` >= 0 keeps only that segment.
inline Scenario quickstart_world(std::int64_t users, int days, int segment = -1) {
  Scenario s = load_scenario(source_dir() / "scenarios" / "quickstart.json");
  s.population.size = users;
  s.days = days;
  if (segment >= 0) s.population.segments = {s.population.segments.at(segment)};
  GroupSpec g;
  g.name = "all";
  g.policy.kind = PolicyKind::kBaseline;
  g.policy.json = R"({"type":"baseline"})";
  s.groups = {g};
  return s;
}

/// Runs one policy on every user of the scenario (no database).
inline RunResult run_policy(const Scenario& s, PolicyPtr policy, int threads = 2) {
  Simulator sim(s, {std::move(policy)});
  RunOptions o;
  o.threads = threads;
  return sim.run(o, nullptr);
}

/// Reward per user per day: the long-term value of a policy (sessions x reward per session).
inline double reward_per_user_day(const RunResult& r) {
  const GroupSummary& g = r.groups.at(0);
  return g.reward_per_session * g.sessions_per_user_day;
}

/// The production baseline's action for a user without history (the "center").
inline std::vector<float> baseline_center(const Scenario& s) {
  std::vector<float> state(kStateDim, 0.0f);
  state[kStateDim - 1] = 1.0f;
  std::vector<float> a(s.action_dim());
  Rng rng(1);
  BaselinePolicy(s.fusion).act(state, a, rng, nullptr);
  return a;
}

/// `base` with some dimensions set to other values.
inline std::vector<float> with(std::vector<float> base, std::vector<std::pair<int, float>> changes) {
  for (auto [j, v] : changes) base.at(j) = v;
  return base;
}

/// Takes `first` on a session's first request, then defers to `rest`.
class FirstThenPolicy final : public Policy {
 public:
  FirstThenPolicy(std::vector<float> first, PolicyPtr rest) : first_(std::move(first)), rest_(std::move(rest)) {}
  std::string name() const override { return "first-then"; }
  int action_dim() const override { return rest_->action_dim(); }
  void act(std::span<const float> state, std::span<float> action, Rng& rng, ActionInfo* info) const override {
    static const int kRequests = [] {
      for (int i = 0; i < kStateDim; ++i)
        if (kStateFeatures[i].name == "session_requests") return i;
      return -1;
    }();
    if (state[kRequests] == 0.0f) std::copy(first_.begin(), first_.end(), action.begin());
    else rest_->act(state, action, rng, info);
  }

 private:
  std::vector<float> first_;
  PolicyPtr rest_;
};

/// The baseline's action shifted by a fixed offset (clipped to [-1, 1]).
class ShiftedPolicy final : public Policy {
 public:
  ShiftedPolicy(std::vector<float> offset, PolicyPtr base) : offset_(std::move(offset)), base_(std::move(base)) {}
  std::string name() const override { return "shifted"; }
  int action_dim() const override { return base_->action_dim(); }
  void act(std::span<const float> state, std::span<float> action, Rng& rng, ActionInfo* info) const override {
    base_->act(state, action, rng, info);
    for (std::size_t j = 0; j < action.size(); ++j) action[j] = std::clamp(action[j] + offset_[j], -1.0f, 1.0f);
  }

 private:
  std::vector<float> offset_;
  PolicyPtr base_;
};

}  // namespace mtf::test
