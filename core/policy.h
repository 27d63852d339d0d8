// The policy interface: maps an agent-facing state to a fusion action.
//
// States are the fixed-length feature vectors of sim/state_features.h; actions
// live in [-1, 1]^d and are mapped to fusion weights by the scenario's fusion
// block. Agents (agents/) implement this interface; the simulator only calls it.
#pragma once

#include <cmath>
#include <limits>
#include <memory>
#include <span>
#include <string>

#include "core/rng.h"

namespace mtf {

/// What a behaviour policy knows about the action it just took. The simulator
/// records it with the transition; offline agents and estimators use it
/// (seed 000 Formulas 4 to 6 need the baseline action and the bounds; NCIS needs
/// the density). Spans are sized d by the caller.
struct ActionInfo {
  bool has_baseline = false;   ///< baseline (mu_bp) action is known
  std::span<float> baseline;   ///< mu_bp(s)
  bool has_bounds = false;     ///< exploration bounds are known
  std::span<float> lower;      ///< absolute lower bound of the action, per dimension
  std::span<float> upper;      ///< absolute upper bound of the action, per dimension
  /// log of the behaviour policy's density of the action taken (NaN when unknown;
  /// for a deterministic policy it is +infinity, recorded as NULL).
  double log_density = std::numeric_limits<double>::quiet_NaN();
};

/// A fusion policy. act() is called concurrently from simulation threads, so it
/// must not mutate shared state; randomness comes only from the rng argument,
/// which is the calling user's own stream.
class Policy {
 public:
  virtual ~Policy() = default;
  /// Human-readable name for tables ("constant", "baseline", "td3"...).
  virtual std::string name() const = 0;
  /// Dimension d of the actions this policy produces.
  virtual int action_dim() const = 0;
  /// Writes an action in [-1, 1]^d for `state`. `info` may be null; when not,
  /// the policy fills in what it knows about its action.
  virtual void act(std::span<const float> state, std::span<float> action, Rng& rng,
                   ActionInfo* info) const = 0;
};

using PolicyPtr = std::shared_ptr<const Policy>;

}  // namespace mtf
