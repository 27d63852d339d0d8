// Stage 4c of the protocol (see stages.h): what the objective sees. A sweep of
// constant actions (with the baseline and the online learners' best policies)
// runs through the oracle on the same
// users; for each objective an agent could maximise (the reward per request,
// the in-session discounted return at each gamma, gamma 0 being the first
// request's reward and gamma 1 the whole session's), and for the cross-session
// formulation's return (a user's requests chained across sessions, discounted
// per request, per user over the stage's days; at gamma 1 it is the window's
// whole reward, the truth itself) the Kendall tau with the
// reward per user-day over the sweep, and the headroom it sees: the reward per
// user-day of the sweep's best policy by that objective, against the
// baseline's and against the sweep's best.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "experiments/metric_keys.h"
#include "experiments/oracle.h"
#include "experiments/stages.h"
#include "metrics/stats.h"
#include "sim/policies.h"

namespace mtf::experiments {

using nlohmann::json;

namespace {
std::string alignment_objective(const char* objective, double gamma) {
  return std::string(objective) + "@" + json(gamma).dump();
}
}  // namespace

void objective_alignment(ExperimentContext& ctx) {
  const AlignmentSpec& spec = *ctx.ex.alignment;
  const auto t = Clock::now();
  const int A = ctx.sc.action_dim();
  // The sweep: the baseline, then constant actions drawn uniformly on the
  // action box from the experiment's own stream.
  std::vector<std::pair<std::string, PolicyPtr>> policies;
  std::vector<std::vector<float>> actions;
  policies.emplace_back(keys::kBaseline, std::make_shared<BaselinePolicy>(ctx.sc.fusion));
  actions.emplace_back();
  Rng rng(ctx.sub_seed(kAlignmentActions, 0));
  for (int k = 0; k < spec.actions; ++k) {
    std::vector<float> a(static_cast<std::size_t>(A));
    for (float& x : a) x = static_cast<float>(2.0 * rng.uniform01() - 1.0);
    policies.emplace_back("constant:" + std::to_string(k), std::make_shared<ConstantPolicy>(a));
    actions.push_back(std::move(a));
  }
  // The best personalised policies the online learners found (ES, BO): what
  // a search that optimises reward per user-day directly reaches.
  std::vector<bool> learned(policies.size(), false);
  for (const LearnerSpec& l : ctx.ex.learners)
    for (const auto& [name, policy] : ctx.policies)
      if (name == l.name) {
        policies.emplace_back(name, policy);
        actions.emplace_back();
        learned.push_back(true);
      }
  OracleOptions o = ctx.oracle_options(spec.users, spec.days, 2);
  // objective name -> value per policy (in policies' order)
  std::vector<std::pair<std::string, std::vector<double>>> objectives, cross;
  std::vector<double> truth(policies.size()), per_request(policies.size());
  for (std::size_t gi = 0; gi < spec.gammas.size(); ++gi) {
    o.gamma = spec.gammas[gi];
    std::vector<double> ret(policies.size()), chained(policies.size());
    for (std::size_t i = 0; i < policies.size(); ++i) {
      // The same users and draws for every gamma: only the discount differs.
      const OracleUserValues v = evaluate_policy(ctx.sc, policies[i].first, policies[i].second, o);
      for (const OracleEstimate& e : v.value.metrics) {
        if (e.metric == keys::kDiscountedReturn) ret[i] = e.value;
        if (e.metric == keys::kChainedReturn) chained[i] = e.value;
        if (gi == 0 && e.metric == keys::kRewardPerUserDay) {
          truth[i] = e.value;
          const double user_days = static_cast<double>(spec.users) * spec.days;
          per_request[i] = v.value.requests > 0 ? e.value * user_days / static_cast<double>(v.value.requests) : std::nan("");
        }
      }
    }
    if (gi == 0) objectives.emplace_back(keys::kRewardPerRequest, per_request);
    objectives.emplace_back(alignment_objective(keys::kDiscountedReturn, spec.gammas[gi]), ret);
    cross.emplace_back(alignment_objective(keys::kChainedReturn, spec.gammas[gi]), chained);
  }
  for (auto& c : cross) objectives.push_back(std::move(c));
  objectives.emplace(objectives.begin(), keys::kRewardPerUserDay, truth);

  for (std::size_t i = 0; i < policies.size(); ++i)
    for (const auto& [name, values] : objectives)
      ctx.M.push_back(plain(keys::kAlignment, policies[i].first, name, values[i], spec.users,
                            i == 0 || learned[i] ? json::object().dump()
                                                 : json{{keys::detail::kAction, actions[i]}}.dump()));
  const double base = truth[0];
  const auto best_truth = std::max_element(truth.begin(), truth.end());
  for (const auto& [name, values] : objectives) {
    const auto best = static_cast<std::size_t>(std::max_element(values.begin(), values.end()) - values.begin());
    ctx.M.push_back(plain(
        keys::kAlignmentTau, name, keys::kRewardPerUserDay, stats::kendall_tau_b(values, truth),
        static_cast<std::int64_t>(values.size()),
        json{{keys::detail::kBestPolicy, policies[best].first},
             {keys::detail::kLiftPercent, 100.0 * (truth[best] - base) / std::abs(base)},
             {keys::detail::kBestPossiblePercent, 100.0 * (*best_truth - base) / std::abs(base)}}
            .dump()));
  }
  ctx.log("alignment: " + std::to_string(policies.size()) + " policies x " + std::to_string(spec.gammas.size()) +
          " gammas x " + std::to_string(spec.users) + " users x " + std::to_string(spec.days) + " days, " +
          std::to_string(seconds_since(t)).substr(0, 5) + " s");
}

}  // namespace mtf::experiments
