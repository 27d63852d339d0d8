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

namespace mtf::experiments {

using nlohmann::json;

void evaluate_with_oracle(ExperimentContext& ctx) {
  const OracleSpec& spec = *ctx.ex.oracle;
  const auto t = Clock::now();
  std::vector<std::pair<std::string, PolicyPtr>> policies = ctx.policies;
  // The behaviour policies: the groups of every non-progressive agent's dataset
  // (a progressive group's policy changes each round, so it has no one
  // behaviour policy), as the scenario runs them.
  const std::vector<PolicyPtr> group_policy = group_policies(ctx.sc).policies;
  std::map<std::string, std::size_t> behaviour;  // group -> index into policies
  OracleOptions o;
  for (const AgentSpec& a : ctx.ex.agents) {
    const auto agent_at = std::find_if(policies.begin(), policies.end(), [&](const auto& p) { return p.first == a.name; });
    if (agent_at == policies.end()) continue;  // diverged: not deployed
    const bool progressive = std::any_of(ctx.ex.progressive.begin(), ctx.ex.progressive.end(),
                                         [&](const ProgressiveSpec& p) { return p.agent == a.name; });
    if (progressive) continue;
    const std::size_t agent_index = static_cast<std::size_t>(agent_at - policies.begin());
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
  o.users = spec.users;
  o.days = spec.days;
  o.gamma = spec.gamma;
  o.user_seed = ctx.sub_seed(kOracleUsers, 0);
  o.threads = ctx.opt.threads;
  o.cluster = ctx.opt.cluster;
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
  ctx.M.push_back(plain(keys::kOracle, keys::kAll, keys::kSeconds, seconds_since(t)));
  ctx.log("oracle: " + std::to_string(policies.size()) + " policies x " + std::to_string(r.users) + " users x " +
          std::to_string(r.days) + " days, " + std::to_string(seconds_since(t)).substr(0, 5) + " s");
}

}  // namespace mtf::experiments
