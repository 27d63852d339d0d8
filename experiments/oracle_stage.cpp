// Stage 4b of the protocol (see stages.h): the oracle. Every policy under
// evaluation (the baseline, the online learners' best, the agents) and the
// behaviour policies that logged the agents' data run on the same fresh
// users with common random numbers (oracle.h); each is compared, paired, with
// the baseline, and each agent with the policies of the exploration groups its
// dataset holds (the first question of offline RL: did it improve on the
// policy that logged its data?).
#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "experiments/agent_refs.h"
#include "experiments/metric_keys.h"
#include "experiments/oracle.h"
#include "experiments/stages.h"
#include "metrics/stats.h"

namespace mtf::experiments {

using nlohmann::json;

namespace {

const OracleEstimate* oracle_metric(const OraclePolicyValue& p, const std::string& metric) {
  for (const OracleEstimate& e : p.metrics)
    if (e.metric == metric) return &e;
  return nullptr;
}

/// Every offline metric (the estimators and the weighted GAUC of the offline
/// stage) against the oracle's truth on the same policies: Kendall tau with the
/// reward per user-day (what a deployment wants) and with the discounted
/// return per session (what FQE-type estimators estimate; with an OPE dataset
/// of chained sessions also the chained return per session); and each
/// FQE-type estimate's relative error where its gamma is the oracle's.
void compare_offline_with_oracle(ExperimentContext& ctx, const OracleResult& r) {
  std::vector<std::pair<std::string, std::string>> sets;  // OPE dataset, metric suffix
  if (!ctx.ex.ope.dataset.empty()) sets.emplace_back(ctx.ex.ope.dataset, "");
  for (const std::string& extra : ctx.ex.ope.extra_datasets) sets.emplace_back(extra, "@" + extra);
  std::vector<const char*> oracle_keys{keys::kRewardPerUserDay, keys::kDiscountedReturn};
  if (std::any_of(sets.begin(), sets.end(), [&](const auto& s) { return ctx.dataset(s.first).cross_session; }))
    oracle_keys.push_back(keys::kChainedSessionReturn);
  for (const char* oracle_key : oracle_keys) {
    for (const auto& [metric, values] : ctx.offline) {
      std::vector<double> x, y;
      std::string used;
      for (const OraclePolicyValue& p : r.policies) {
        const auto it = values.find(p.name);
        const OracleEstimate* truth = oracle_metric(p, oracle_key);
        if (it == values.end() || !std::isfinite(it->second) || !truth || !std::isfinite(truth->value)) continue;
        x.push_back(it->second);
        y.push_back(truth->value);
        used += (used.empty() ? "" : ", ") + p.name;
      }
      const double tau = x.size() >= 2 ? stats::kendall_tau_b(x, y) : std::nan("");
      ctx.M.push_back(plain(keys::kOpeVsOracle, metric, oracle_key, tau, static_cast<std::int64_t>(x.size()),
                            json{{keys::detail::kPolicies, used}}.dump()));
    }
  }
  // A different objective, no error to state: another gamma, or an OPE dataset
  // discounted by elapsed time. A dataset whose sessions are chained has its
  // value over the user's later sessions: the chained return per session.
  if (ctx.ex.ope.gamma != r.gamma || ctx.ex.ope.dataset.empty()) return;
  for (const auto& [dataset, suffix] : sets) {
    if (ctx.dataset(dataset).discount_seconds > 0) continue;
    const bool chained = ctx.dataset(dataset).cross_session;
    const char* truth_key = chained ? keys::kChainedSessionReturn : keys::kDiscountedReturn;
    for (const OraclePolicyValue& p : r.policies) {
      const OracleEstimate* truth = oracle_metric(p, truth_key);
      if (!truth) continue;
      for (const char* method : {keys::kFqe, keys::kConservativeOpe}) {
        const auto m = ctx.offline.find(method + suffix);
        if (m == ctx.offline.end()) continue;
        const auto it = m->second.find(p.name);
        if (it == m->second.end() || !std::isfinite(it->second)) continue;
        const double err = truth->value != 0 ? (it->second - truth->value) / std::abs(truth->value) : std::nan("");
        json d{{keys::detail::kEstimate, it->second},
               {keys::detail::kTruth, truth->value},
               {keys::detail::kTruthHalfWidth, truth->half_width},
               {keys::detail::kOracleMetric, truth_key},
               {keys::detail::kGamma, r.gamma}};
        if (const OracleEstimate* tail = oracle_metric(p, keys::kChainedTailWeight); tail && chained)
          d[keys::detail::kTruthTailWeight] = tail->value;
        ctx.M.push_back(plain(keys::kOpeError, p.name, m->first, err, r.users, d.dump()));
      }
    }
  }
}

}  // namespace

void evaluate_with_oracle(ExperimentContext& ctx) {
  const OracleSpec& spec = *ctx.ex.oracle;
  const auto t = Clock::now();
  std::vector<std::pair<std::string, PolicyPtr>> policies = ctx.policies;
  // The behaviour policies: the groups of every non-progressive agent's dataset
  // (a progressive group's policy changes each round, so it has no one
  // behaviour policy), as the scenario runs them.
  const std::vector<PolicyPtr> group_policy = group_policies(ctx.sc).policies;
  std::map<std::string, std::size_t> behaviour;  // group -> index into policies
  OracleOptions o = ctx.oracle_options(spec.users, spec.days, 0);
  for (const AgentSpec& a : ctx.ex.agents) {
    const auto agent_at = std::find_if(policies.begin(), policies.end(), [&](const auto& p) { return p.first == a.name; });
    if (agent_at == policies.end()) continue;  // diverged: not deployed
    const bool progressive = std::any_of(ctx.ex.progressive.begin(), ctx.ex.progressive.end(),
                                         [&](const ProgressiveSpec& p) { return p.agent == a.name; });
    const std::size_t agent_index = static_cast<std::size_t>(agent_at - policies.begin());
    if (progressive) {
      // "if_better": the agent against the policy its group ended with.
      const auto deployed_at = std::find_if(policies.begin(), policies.end(),
                                            [&](const auto& p) { return p.first == keys::kDeployedPrefix + a.name; });
      if (deployed_at != policies.end())
        o.pairs.emplace_back(agent_index, static_cast<std::size_t>(deployed_at - policies.begin()));
      continue;
    }
    for (const int g : ctx.dataset_groups(ctx.dataset(a.dataset))) {
      const std::string& group = ctx.sc.groups[static_cast<std::size_t>(g)].name;
      auto it = behaviour.find(group);
      if (it == behaviour.end()) {
        it = behaviour.emplace(group, policies.size()).first;
        policies.emplace_back(keys::kBehaviourPrefix + group, group_policy[static_cast<std::size_t>(g)]);
      }
      o.pairs.emplace_back(agent_index, it->second);
    }
  }
  // The paper's control (the A/B's control arm, ES or BO): every other
  // policy under evaluation against it, paired, as the papers' tables
  // compare (their A/B is one replicate of disjoint users; this is the truth).
  if (ctx.ex.ab && ctx.ex.ab->control != keys::kBaseline) {
    const auto control_at = std::find_if(ctx.policies.begin(), ctx.policies.end(),
                                         [&](const auto& p) { return p.first == ctx.ex.ab->control; });
    if (control_at != ctx.policies.end()) {
      const auto control = static_cast<std::size_t>(control_at - ctx.policies.begin());
      for (std::size_t i = 1; i < ctx.policies.size(); ++i)
        if (i != control) o.pairs.emplace_back(i, control);
    }
  }
  o.gamma = spec.gamma;
  const OracleResult r = evaluate_policies(ctx.sc, policies, o);

  for (const OraclePolicyValue& p : r.policies)
    for (const OracleEstimate& e : p.metrics) {
      MetricRow row = plain(keys::kOracle, p.name, e.metric, e.value, r.users);
      row.ci_low = e.value - e.half_width;
      row.ci_high = e.value + e.half_width;
      ctx.M.push_back(std::move(row));
    }
  for (const OracleDifference& d : r.differences) {
    MetricRow row = plain(keys::kOracleDiff, d.policy + " vs " + d.reference, d.metric, d.difference, r.users,
                          json{{keys::detail::kPolicy, d.policy},
                               {keys::detail::kReference, d.reference},
                               {keys::detail::kRelativePercent, std::isfinite(d.relative_percent) ? json(d.relative_percent) : json(nullptr)},
                               {keys::detail::kUnpairedHalfWidth, std::isfinite(d.unpaired_half_width) ? json(d.unpaired_half_width) : json(nullptr)},
                               {keys::detail::kVarianceReduction, std::isfinite(d.variance_reduction) ? json(d.variance_reduction) : json(nullptr)}}
                              .dump());
    row.ci_low = d.difference - d.half_width;
    row.ci_high = d.difference + d.half_width;
    ctx.M.push_back(std::move(row));
  }
  compare_offline_with_oracle(ctx, r);
  ctx.M.push_back(plain(keys::kOracle, keys::kAll, keys::kSeconds, seconds_since(t)));
  ctx.log("oracle: " + std::to_string(policies.size()) + " policies x " + std::to_string(r.users) + " users x " +
          std::to_string(r.days) + " days, " + std::to_string(seconds_since(t)).substr(0, 5) + " s");
}

}  // namespace mtf::experiments
