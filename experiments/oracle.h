// The oracle: a policy's true value in a scenario's world, by simulation with
// common random numbers. Every policy runs on the same evaluation users (one
// group, the same user seed), so each user keeps its own streams (profile,
// behaviour, retrieval, the policy's stream) and two policies differ only
// through their actions. Per policy: the user-level metrics with 95% intervals;
// per policy against the reference (the first): paired per-user differences,
// their t interval, and the unpaired interval from the same values for scale.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cluster.h"
#include "core/policy.h"
#include "sim/scenario.h"

namespace mtf::experiments {

/// The size of an oracle evaluation.
struct OracleOptions {
  std::int64_t users = 20000;   ///< evaluation users, >= 2 (the population's size)
  int days = 3;                 ///< simulated days, 1 .. 60 (the return rate needs >= 2)
  std::uint64_t user_seed = 0;  ///< the users' seed, the same for every policy (0: the scenario's seed)
  int threads = 1;              ///< results do not depend on it
  const Cluster* cluster = nullptr;  ///< shards the users over MPI ranks (RunOptions::cluster); null: this process
  double gamma = 0.95;          ///< discount of the in-session discounted return, in [0, 1]
  /// More comparisons besides every policy against the first: (policy,
  /// reference) indices into the policies, each a paired difference.
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
};

/// A mean (or ratio) with its two-sided 95% interval.
struct OracleEstimate {
  std::string metric;   ///< a key of experiments/metric_keys.h (reward_per_user_day, ...)
  double value = 0;     ///< the mean over users (ratio metrics: sum(num) / sum(den))
  double half_width = 0;  ///< of the 95% interval (t, n - 1 degrees of freedom; delta method for ratios)
};

/// One policy's value on the evaluation users.
struct OraclePolicyValue {
  std::string name;
  std::vector<OracleEstimate> metrics;  ///< in oracle_metrics() order
  std::int64_t requests = 0, sessions = 0, sessions_capped = 0;
  double wall_seconds = 0;  ///< this policy's simulation
};

/// A policy against the reference, one metric, from per-user differences.
struct OracleDifference {
  std::string policy, reference, metric;
  double difference = 0;            ///< policy - reference (absolute units of the metric)
  double half_width = 0;            ///< paired 95% interval: mean(d) +- t * sd(d) / sqrt(n)
  double relative_percent = 0;      ///< 100 * difference / reference value (NaN when that is 0)
  double unpaired_half_width = 0;   ///< the same values as if the groups were independent
  double variance_reduction = 0;    ///< unpaired variance / paired variance (inf when paired is 0)
};

/// What evaluate_policies measured.
struct OracleResult {
  std::string scenario;
  std::int64_t users = 0;
  int days = 0;
  std::uint64_t user_seed = 0;  ///< as used (the scenario's seed when 0 was given)
  double gamma = 0.95;          ///< of the discounted return
  std::vector<OraclePolicyValue> policies;   ///< in input order; the first is the reference
  std::vector<OracleDifference> differences;  ///< every other policy x every metric, then options.pairs
};

/// One policy's per-user values on the evaluation users, kept so that a
/// policy evaluated later (a training's checkpoint) can be compared, paired,
/// with one evaluated earlier on the same users.
struct OracleUserValues {
  OraclePolicyValue value;
  /// Per metric (oracle_metrics() order): the level (OracleEstimate::value)
  /// and each user's linearised value (the level's variance is var / users).
  std::vector<double> level;
  std::vector<std::vector<double>> per_user;
};

/// The metrics the oracle reports, in table order (keys of metric_keys.h):
/// reward, valid consumption, watch seconds and dwell seconds per user-day
/// (means over users), the next-day return rate (a ratio: returns /
/// eligible days, as the A/B test computes it), and the in-session discounted
/// return per session at OracleOptions::gamma (a ratio: the sum over sessions
/// of sum_k gamma^k r_k, over sessions; what a session-MDP agent maximises).
const std::vector<std::string>& oracle_metrics();

/// Runs each policy of `policies` (name, policy; at least one, each of the
/// world's action dimension) on the same `options.users` users for
/// `options.days` days in `world` (its catalogue, population segments, limits;
/// its groups are replaced by one group), and compares each with the first.
/// Throws std::invalid_argument for an empty list, a policy of another action
/// dimension, or options out of range.
OracleResult evaluate_policies(const Scenario& world,
                               const std::vector<std::pair<std::string, PolicyPtr>>& policies,
                               const OracleOptions& options);

/// Runs one policy as evaluate_policies runs each (the same users for the
/// same options and world). Throws as evaluate_policies.
OracleUserValues evaluate_policy(const Scenario& world, const std::string& name, const PolicyPtr& policy,
                                 const OracleOptions& options);

/// `policy` against `reference`, metric `metric` (an index into
/// oracle_metrics()), paired over users: both must come from evaluate_policy
/// with the same world and options (the same users). Throws
/// std::invalid_argument for different user counts or a metric out of range.
OracleDifference paired_difference(const OracleUserValues& policy, const OracleUserValues& reference,
                                   std::size_t metric);

/// The per-policy table and the paired-difference table (markdown).
std::string oracle_markdown(const OracleResult& r);
/// The same as JSON (infinite or undefined numbers as null).
nlohmann::json oracle_json(const OracleResult& r);

}  // namespace mtf::experiments
