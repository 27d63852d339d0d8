// Stage 1 of the protocol (see stages.h): the exploration with its progressive
// rounds, what it cost each group's users, and the density of its samples near
// the baseline.
#include "sim/exploration.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "agents/ope.h"
#include "core/rng.h"
#include "core/sim_time.h"
#include "experiments/metric_keys.h"
#include "experiments/stages.h"
#include "sim/policies.h"

namespace mtf::experiments {

using nlohmann::json;

namespace {

PolicyPtr bounded_around(const GroupSpec& g, PolicyPtr base) {
  const auto& b = g.policy.bound;
  if (b.size() == 1) return std::make_shared<BoundedUniformPolicy>(std::move(base), b[0]);
  return std::make_shared<BoundedUniformPolicy>(std::move(base), b);
}

/// "accept": "if_better": whether `user` is one of the users a progressive
/// group holds out of training (a fixed share, by a hash of the user id: the
/// same users every round, whatever the thread or rank count).
bool held_out(const ExperimentContext& ctx, const ProgressiveSpec& p, std::int64_t user) {
  const std::uint64_t h = derive_seed(ctx.sub_seed(kProgressiveHoldout, 0), Stream::kExperiment,
                                      static_cast<std::uint64_t>(user));
  return static_cast<double>(h >> 11) * 0x1.0p-53 < p.holdout;
}

/// The off-policy estimate that decides a progressive round: `policy` on the
/// round's held-out transitions, with offline.ope's settings and a seed that
/// depends on the round only (both policies draw the same minibatches).
double acceptance_estimate(const ExperimentContext& ctx, const ProgressiveSpec& p, const agents::Dataset& data,
                           const Policy& policy, int round) {
  const bool conservative = p.check == keys::kConservativeOpe;
  const agents::FqeOptions fo =
      fqe_options(ctx.ex.ope, data, ctx.sub_seed(kProgressiveHoldout, static_cast<std::uint64_t>(round) + 1),
                  conservative, ctx.shards());
  try {
    return conservative ? agents::conservative_ope(data, policy, fo).value
                        : agents::fitted_q_evaluation(data, policy, fo).value;
  } catch (const std::exception& e) {
    // A diverging fit, or held-out data it cannot use: the run goes on and
    // the deployed policy stays.
    if (!every_rank_threw(ctx, e)) throw;
    ctx.log("progressive: the acceptance estimate of round " + std::to_string(round) + " failed: " + e.what());
    return std::nan("");
  }
}

/// Runs the exploration's days; after each progressive round its agent trains
/// on the group's data so far and, frozen as a clone, becomes the group's baseline.
void run_rounds(ExperimentContext& ctx, int first_day) {
  const Scenario& sc = ctx.sc;
  RunOptions ro;
  ro.threads = ctx.opt.threads;
  ro.cluster = ctx.opt.cluster;
  ro.collect = true;
  ro.on_batch = [&](const RecordBatch& b) {
    ctx.keep(b.transition_columns);
    ctx.keep(std::span<const ImpressionRow>(b.impressions));
  };
  // Progressive rounds split the days; all groups advance together.
  int round_days = sc.days;
  for (const auto& p : ctx.ex.progressive) round_days = std::gcd(round_days, sc.days / p.rounds);
  for (int day = first_day; day < sc.days; day += round_days) {
    const RunResult r = ctx.sim.run_days(round_days, ro, &ctx.rec);
    ctx.sessions_capped += r.sessions_capped;
    // Room for the days to come, projected from the days so far.
    if (day + round_days < sc.days) ctx.col.reserve(static_cast<double>(sc.days) / (day + round_days));
    ctx.log("exploration: days " + std::to_string(day) + "-" +
            std::to_string(day + round_days - 1) + ", " + std::to_string(r.requests) + " requests");
    for (const auto& p : ctx.ex.progressive) {
      const int days_per_round = sc.days / p.rounds;
      if ((day + round_days) % days_per_round != 0) continue;
      const int g = group_index(sc, p.group);
      const AgentSpec& a = ctx.agent_spec(p.agent);
      const int round = (day + round_days) / days_per_round;
      ctx.col.seal();  // the data so far, readable (out of core: mapped)
      std::vector<std::size_t> rows = select_rows(ctx.col.view(), {g}, 0, 1e300);
      // if_better: the held-out users' transitions of this round (logged
      // around the deployed policy) are the acceptance test's, never trained on.
      std::vector<std::size_t> test_rows;
      if (p.accept_if_better) {
        const TransitionColumnsView c = ctx.col.view();
        const double round_start = static_cast<double>(day + round_days - days_per_round) * kSecondsPerDay;
        // A round's sessions are those that started in it: a session that
        // ran past midnight into this round was logged around the previous
        // round's centre.
        std::map<std::pair<std::int64_t, int>, double> session_start;
        for (const std::size_t i : rows)
          if (c.rows[i].step == 0 && held_out(ctx, p, c.rows[i].user))
            session_start[{c.rows[i].user, c.rows[i].session}] = c.rows[i].time;
        std::vector<std::size_t> train_rows;
        for (const std::size_t i : rows) {
          if (!held_out(ctx, p, c.rows[i].user)) {
            train_rows.push_back(i);
            continue;
          }
          const auto s = session_start.find({c.rows[i].user, c.rows[i].session});
          if ((s != session_start.end() ? s->second : c.rows[i].time) >= round_start) test_rows.push_back(i);
        }
        rows = std::move(train_rows);
      }
      if (rows.empty())
        throw ExperimentError("experiment: progressive group " + p.group + " recorded no transitions" +
                              (p.accept_if_better ? " outside its held-out users" : "") +
                              (ctx.shards() ? " of " + shard_name(ctx) + ": use fewer ranks, or run without "
                                              "--data-parallel"
                                            : ""));
      // The curve's drift: from the policy this round's data explored around.
      const auto deployed = ctx.deployed.find(a.name);
      const PolicyPtr centre = deployed != ctx.deployed.end() ? PolicyPtr(deployed->second)
                                                              : around_policy(sc.groups[g].policy, sc);
      train_agent(ctx, a,
                  ctx.col.dataset(rows, reward_function(a.reward ? &*a.reward : nullptr),
                                  ctx.dataset(a.dataset)),
                  a.steps, {}, centre.get());
      ctx.log("progressive: " + a.name + " trained after round " + std::to_string(round) + " of " +
              std::to_string(p.rounds));
      if (ctx.ex.convergence && !ctx.failed.count(a.name)) record_convergence_checkpoint(ctx, a);
      ctx.M.push_back(plain(keys::kProgressive, a.name, keys::kTransitionsAfterRound,
                            static_cast<double>(ctx.train_rows[a.name]), round));
      bool accept = true;
      // The last round's check decides what the group ends with (deployed:AGENT
      // in the later stages), though the simulation deploys nothing after it.
      if (p.accept_if_better && !ctx.failed.count(a.name)) {
        if (test_rows.empty())
          throw ExperimentError("experiment: progressive group " + p.group + " has no held-out transitions in round " +
                                std::to_string(round) +
                                (ctx.shards() ? " among " + shard_name(ctx) +
                                                    ": raise its \"holdout\" share or its users, use fewer ranks, "
                                                    "or run without --data-parallel"
                                              : std::string(": raise its \"holdout\" share or its users")));
        const agents::Dataset test = ctx.col.dataset(test_rows, reward_function(a.reward ? &*a.reward : nullptr),
                                                     ctx.dataset(a.dataset));
        const double candidate = acceptance_estimate(ctx, p, test, *ctx.agent.at(a.name), round);
        const double incumbent = acceptance_estimate(ctx, p, test, *centre, round);
        accept = candidate > incumbent;  // NaN on either side: keep the deployed policy
        const std::string det = json{{keys::detail::kMethod, p.check}}.dump();
        const auto n = static_cast<std::int64_t>(sum_over_ranks(ctx.shards(), {static_cast<double>(test.size())})[0]);
        ctx.M.push_back(plain(keys::kProgressive, a.name, keys::kCandidateEstimate, candidate, n, det));
        ctx.M.back().rep = round;
        ctx.M.push_back(plain(keys::kProgressive, a.name, keys::kDeployedEstimate, incumbent, n, det));
        ctx.M.back().rep = round;
        ctx.M.push_back(plain(keys::kProgressive, a.name, keys::kAccepted, accept ? 1.0 : 0.0, n, det));
        ctx.M.back().rep = round;
        ctx.log("progressive: " + a.name + " round " + std::to_string(round) + (accept ? " accepted" : " not accepted") +
                " (" + p.check + " " + std::to_string(candidate) + " against the deployed policy's " +
                std::to_string(incumbent) + ")");
      }
      // After the last round only "if_better" keeps what the group ended with
      // (deployed:AGENT); with "always" that is the agent itself.
      const bool more_rounds = day + round_days < sc.days;
      if (!ctx.failed.count(a.name) && accept && (more_rounds || p.accept_if_better)) {
        ctx.deployed[a.name] = ctx.agent.at(a.name)->clone();
        if (more_rounds) ctx.sim.set_policy(g, bounded_around(sc.groups[g], ctx.deployed[a.name]));
      }
    }
    if (day + round_days < sc.days) save_checkpoint(ctx, Done::kExplorationRound, day + round_days, true);
  }
  ctx.col.seal(/*last=*/true);  // what training and evaluation read from here
  // Sharded: every rank's together.
  const std::vector<double> held = sum_over_ranks(
      ctx.shards(), {static_cast<double>(ctx.col.size()), static_cast<double>(ctx.col.impressions().size())});
  ctx.M.push_back(plain(keys::kExploration, keys::kAll, keys::kTransitions, held[0]));
  ctx.M.push_back(plain(keys::kExploration, keys::kAll, keys::kImpressions, held[1]));
  if (const Cluster* ranks = ctx.shards()) {
    ctx.M.push_back(plain(keys::kExploration, keys::kAll, keys::kTransitionsLargestShard,
                          max_over_ranks(ranks, static_cast<double>(ctx.col.size()))));
    ctx.M.push_back(plain(keys::kExploration, keys::kAll, keys::kImpressionsLargestShard,
                          max_over_ranks(ranks, static_cast<double>(ctx.col.impressions().size()))));
  }
  ctx.flush();
}

/// Exploration cost: each group against the control group over the exploration days.
void exploration_cost(ExperimentContext& ctx) {
  const Scenario& sc = ctx.sc;
  const int cg = group_index(sc, ctx.ex.exploration_control);
  const ArmValues c = arm_values(ctx.sim.user_totals(), ctx.sim.group_assignment(), cg, sc.days);
  for (std::size_t g = 0; g < sc.groups.size(); ++g) {
    const ArmValues t = arm_values(ctx.sim.user_totals(), ctx.sim.group_assignment(), static_cast<int>(g), sc.days);
    for (const AbMetric& m : ab_metrics()) {
      ctx.M.push_back(
          plain(keys::kExplorationLevel, sc.groups[g].name, m.name, arm_level(t, m), t.users));
      if (static_cast<int>(g) == cg) continue;
      if (const auto l = arm_lift(c, t, m))
        ctx.M.push_back(lift_row(keys::kExploration, sc.groups[g].name, m.name, *l, std::nullopt));
    }
  }
}

/// Seed 000 section 4.5.2: density of samples near the baseline, bounded
/// uniform vs Gaussian. Only when the exploration has both kinds (IntegratedRL-MTF's comparison).
void density_near_baseline(ExperimentContext& ctx) {
  const int A = ctx.A;
  double sigma = 0, bound = 0;
  for (const auto& g : ctx.sc.groups) {
    if (g.policy.kind == PolicyKind::kGaussian) sigma = g.policy.sigma;
    if (g.policy.kind == PolicyKind::kBoundedUniform) bound = g.policy.bound[0];
  }
  if (!(sigma > 0 && bound > 0)) return;
  const TransitionColumnsView c = ctx.col.view();
  std::vector<float> mu(static_cast<std::size_t>(A), 0.0f);
  std::int64_t nb = 0;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (c.rows[i].has_baseline) {
      for (int k = 0; k < A; ++k) mu[k] += c.baseline[i * A + k];
      ++nb;
    }
  if (const Cluster* ranks = ctx.shards()) {  // the union's mean, summed in rank order
    std::vector<double> sums(mu.begin(), mu.end());
    sums.push_back(static_cast<double>(nb));
    sums = sum_over_ranks(ranks, std::move(sums));
    for (int k = 0; k < A; ++k) mu[static_cast<std::size_t>(k)] = static_cast<float>(sums[static_cast<std::size_t>(k)]);
    nb = static_cast<std::int64_t>(sums.back());
  }
  if (nb > 0)
    for (float& x : mu) x /= static_cast<float>(nb);
  const NearBaselineDensity meas =
      near_baseline_density(mu, sigma, bound, bound, 1000000, ctx.sub_seed(kEvalDraws, 99));
  const NearBaselineDensity ana = near_baseline_density_analytic(mu, sigma, bound, bound);
  const std::string det =
      json{{keys::detail::kSigma, sigma}, {keys::detail::kBound, bound}, {keys::detail::kRadius, bound}, {keys::detail::kDims, A}}.dump();
  using namespace keys;
  ctx.M.push_back(
      plain(kDensity, kGaussian, kShareNearBaseline, meas.gaussian_share, 1000000, det));
  ctx.M.push_back(
      plain(kDensity, kBoundedUniform, kShareNearBaseline, meas.uniform_share, 1000000, det));
  ctx.M.push_back(plain(kDensity, kRatio, kMeasured, meas.ratio, 1000000, det));
  ctx.M.push_back(plain(kDensity, kRatio, kAnalytic, ana.ratio, std::nullopt, det));
  ctx.M.push_back(plain(kDensity, kRatio, kLog2Analytic, std::log2(ana.ratio), std::nullopt, det));
}

}  // namespace

void explore(ExperimentContext& ctx, const ResumePoint& rp) {
  std::vector<bool> imp_groups(ctx.sc.groups.size(), false);
  if (!ctx.ex.gauc_dataset.empty())
    for (int g : ctx.dataset_groups(ctx.dataset(ctx.ex.gauc_dataset))) imp_groups[g] = true;
  ctx.sim.set_impression_groups(imp_groups);
  ctx.sim.track_user_totals(true);
  if (rp.done == Done::kExplorationRound) {
    // The users as they were after the last round, exploring around the
    // agents deployed then.
    std::string joined;
    ctx.sim.restore_state(ctx.resumed()->large("simulator", joined));
    ctx.release_resumed("simulator");
    for (const auto& p : ctx.ex.progressive) {
      const auto it = ctx.deployed.find(p.agent);
      if (it != ctx.deployed.end()) {
        const int g = group_index(ctx.sc, p.group);
        ctx.sim.set_policy(g, bounded_around(ctx.sc.groups[g], it->second));
      }
    }
  }
  run_rounds(ctx, rp.explored_days);
  if (!ctx.ex.exploration_control.empty()) exploration_cost(ctx);
  density_near_baseline(ctx);
}

}  // namespace mtf::experiments
