// Learners that improve a fusion policy online, round by round, from A/B-style
// group scores: the baselines the papers compare against. Seed 000 benchmarks
// against ES (personalised fusion weights from the user state, "alternating
// mutation and selection"); BatchRL-MTF adds Bayesian optimisation (one constant
// fusion action for all users, a Gaussian process with UCB); both papers name
// grid search as the oldest method. Unlike the offline agents (agents/agent.h)
// these never see transitions: only one score per deployed candidate.
//
// The protocol (driven by the integrator's engine):
//   loop: ps = propose();   // K candidate policies
//         deploy ps[k] to its own random group of users for the round's days;
//         observe(scores, users);   // one mean per-user reward per candidate
//   deploy best() at any time.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/policy.h"

namespace mtf::agents {

class OnlineLearner {
 public:
  virtual ~OnlineLearner() = default;
  /// "es", "bo" or "grid".
  virtual std::string name() const = 0;
  /// K: the number of candidate policies evaluated per online round.
  virtual int candidates_per_round() const = 0;
  /// The K candidate policies for the next round. The engine deploys candidate k
  /// to its own random group of users for the round's simulated days and then
  /// calls observe() with one score per candidate. Calling propose() twice
  /// without observe() in between returns the same candidates (each round's
  /// random draws come from a stream derived from the seed and the round index).
  /// The policies are immutable and safe to call concurrently.
  virtual std::vector<PolicyPtr> propose() = 0;
  /// scores[k] = mean per-user reward of candidate k's group over the round
  /// (higher is better); users[k] = the number of users behind scores[k] (used by
  /// noise-aware learners, which weight a score's noise variance by 1 / users).
  /// Throws std::logic_error when no proposal is pending and std::invalid_argument
  /// for sizes other than K, a non-finite score or a user count below 1.
  virtual void observe(std::span<const double> scores, std::span<const std::int64_t> users) = 0;
  /// The policy to deploy now (ES: the current mean parameters; BO: the best
  /// posterior mean among evaluated points; grid: the best evaluated point).
  /// Valid before the first round: the starting point.
  virtual PolicyPtr best() const = 0;
  /// Rounds completed (observe() calls that were accepted).
  virtual int rounds_done() const = 0;
  /// Resolved hyperparameters ("hyperparameters") and a summary of the current
  /// state, for reports.
  virtual nlohmann::json describe() const = 0;
};

/// The learner types make_online_learner() knows: {"es", "bo", "grid"}.
std::vector<std::string> online_learner_names();

/// Builds a learner. type: "es" | "bo" | "grid". hyperparameters: a JSON object
/// (null = all defaults; see es.h, bo.h, grid.h for keys and defaults); unknown
/// keys or bad values throw std::invalid_argument naming "<type>.<key>" and what
/// it expects. state_dim: the length of the states act() receives (ES);
/// action_dim: d, in [1, 64]. baseline: the production policy (ES starts from it
/// and needs it; BO starts from its action for a user without history; grid
/// returns it from best() until a grid point has been evaluated); may be null
/// for BO and grid. seed: the master seed of the learner's own streams.
std::unique_ptr<OnlineLearner> make_online_learner(const std::string& type,
                                                   const nlohmann::json& hyperparameters,
                                                   int state_dim, int action_dim,
                                                   PolicyPtr baseline, std::uint64_t seed);

}  // namespace mtf::agents
