// Learning curves: what an agent's training looks like every so many steps,
// measured on a fixed probe of its dataset, so that whether a training has
// stopped improving can be seen (and written to the run database by the
// experiment engine, section "curve").
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "agents/agent.h"
#include "agents/dataset.h"
#include "core/policy.h"

namespace mtf::agents {

/// One point of a training curve.
struct CurvePoint {
  std::int64_t step = 0;  ///< the agent's steps trained so far
  Losses losses;          ///< of the step just taken (TrainProgress::losses)
  /// Mean over the probe of the critics' mean Q(s, pi(s)); NaN for an agent
  /// without critics (BC).
  double mean_q = 0;
  /// Share of the probe's bounded transitions where pi(s) leaves the logged
  /// exploration bounds in some dimension; NaN when none is bounded.
  double outside_bounds = 0;
  /// Mean Euclidean distance between pi(s) and the logged baseline action, over
  /// the probe's transitions whose baseline is known; NaN when none is.
  double baseline_distance = 0;
  /// Mean over the probe of the critics' mean Q(s, a) of the logged action a;
  /// NaN for an agent without critics.
  double q_data = 0;
  /// Mean over the probe of the logged data's discounted Monte-Carlo return
  /// from (s, a) (Dataset::discounted_returns at the probe's gamma): what
  /// q_data would be for the behaviour policy. q_data far above it is the
  /// overestimation an actor exploits; NaN when the probe has no gamma.
  double mc_return = 0;
  /// Mean Euclidean distance between pi(s) and the reference policy's action
  /// (CurveProbe::set_reference: for a progressive round, the policy deployed
  /// while the round's data were logged): how far the new policy drifts from
  /// the one it will replace. NaN without a reference.
  double drift = 0;
};

/// The probe: up to `size` transitions of the dataset, evenly spaced over it
/// (a fixed set: the curve's changes are the agent's, not the sample's).
class CurveProbe {
 public:
  /// `gamma` discounts the probe's Monte-Carlo returns (CurvePoint::mc_return;
  /// NaN: none, for agents without a discount).
  CurveProbe(const Dataset& data, int size = 1024, double gamma = std::numeric_limits<double>::quiet_NaN());
  int size() const { return static_cast<int>(states_.cols()); }
  /// Measures `agent` now. Stochastic policies draw from a stream seeded by
  /// the step, so a measurement never touches the agent's own streams.
  CurvePoint measure(const Agent& agent, const Losses* losses) const;
  /// The policy CurvePoint::drift is measured from: its actions on the probe,
  /// computed now (a stochastic policy draws from a fixed stream).
  void set_reference(const Policy& reference);

 private:
  Matrix states_, actions_, baseline_, baseline_known_, lower_, upper_, bounded_;
  Matrix reference_;  ///< the reference policy's actions; empty without one
  double mc_return_ = std::numeric_limits<double>::quiet_NaN();
};

/// The discount of `agent`'s objective (its "gamma" hyperparameter), NaN
/// for an agent without one (BC).
double agent_gamma(const Agent& agent);

/// The steps at which a training of `steps` steps records its curve: every
/// max(1, steps / points) steps, and the last step.
bool is_curve_step(std::int64_t step, std::int64_t steps, int points = 50);

/// Up to `count` indices into n curve points, log-spaced (dense early, where
/// a training changes fastest), the first and the last included, increasing.
std::vector<std::size_t> log_spaced_indices(std::size_t n, int count = 9);

}  // namespace mtf::agents
