// The policy interface: maps an agent-facing state to a fusion action.
//
// States are the fixed-length feature vectors of core/state_features.h; actions
// live in [-1, 1]^d and are mapped to fusion weights by the scenario's fusion
// block. Agents (agents/) implement this interface; the simulator only calls it.
#pragma once

#include <cmath>
#include <limits>
#include <memory>
#include <cstddef>
#include <span>
#include <string>

#include "core/rng.h"

namespace mtf {

/// What a behaviour policy knows about the action it just took. The simulator
/// records it with the transition; offline agents and estimators use it
/// (IntegratedRL-MTF Formulas 4 to 6 need the baseline action and the bounds; NCIS needs
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
  /// Actions for n = rngs.size() states at once. The rows of a batch are
  /// contiguous: state i is states[i * S, (i + 1) * S) with S = states.size() / n,
  /// action i is actions[i * d, (i + 1) * d) (the layout of TransitionColumns and
  /// of an S x n column-major matrix, agents/nn/tensor.h). rngs[i] is the stream
  /// of row i's user; infos is empty or holds n entries (each may be null).
  /// Gives exactly what n calls of act() in row order give, draws included; the
  /// default does that. Policies with a cheaper batched form (networks)
  /// override it. One exception: when every row passes the same stream (offline
  /// evaluation asks so), a policy may draw from it in its own batched order.
  virtual void act_batch(std::span<const float> states, std::span<float> actions,
                         std::span<Rng* const> rngs, std::span<ActionInfo* const> infos) const {
    const std::size_t n = rngs.size();
    if (n == 0) return;
    const std::size_t S = states.size() / n, d = actions.size() / n;
    for (std::size_t i = 0; i < n; ++i)
      act(states.subspan(i * S, S), actions.subspan(i * d, d), *rngs[i], infos.empty() ? nullptr : infos[i]);
  }
};

using PolicyPtr = std::shared_ptr<const Policy>;

}  // namespace mtf
