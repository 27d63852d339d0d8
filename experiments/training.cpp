// Stage 2 of the protocol (see stages.h): the agents, created up front and
// trained on their datasets (one dataset per dataset name and reward variant).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "agents/curves.h"
#include "core/state_features.h"
#include "experiments/convergence.h"
#include "experiments/metric_keys.h"
#include "experiments/oracle.h"
#include "experiments/stages.h"
#include "sim/policies.h"

namespace mtf::experiments {

using nlohmann::json;

namespace {

/// The dataset agent `a` trains on, built once per (dataset, reward variant).
const agents::Dataset& dataset_for(ExperimentContext& ctx, const AgentSpec& a) {
  std::string key = a.dataset;
  if (a.reward) {
    const RewardParams& w = *a.reward;
    for (double x :
         {w.play, w.valid, w.watch_minutes, w.finish, w.like, w.share, w.comment, w.skip})
      key.append("|").append(json(x).dump());
  }
  auto& d = ctx.datasets[key];
  if (!d) {
    const DatasetSpec& ds = ctx.dataset(a.dataset);
    std::vector<std::size_t> rows =
        select_rows(ctx.col.view(), ctx.dataset_groups(ds), ds.time_from * ctx.period,
                    ds.time_to * ctx.period);
    if (rows.empty())
      throw ExperimentError("experiment: agent " + a.name + ": its dataset " + a.dataset + " holds no transitions" +
                            (ctx.shards() ? " of " + shard_name(ctx) + ": use fewer ranks, or run without --data-parallel"
                                          : std::string(" (check its groups and time window)")));

    d = std::make_shared<const agents::Dataset>(
        ctx.col.dataset(rows, reward_function(a.reward ? &*a.reward : nullptr), ds));
  }
  return *d;
}

/// The oracle's options for the convergence checkpoints: their own users.
OracleOptions checkpoint_oracle(const ExperimentContext& ctx) {
  const ConvergenceSpec& cs = *ctx.ex.convergence;
  return ctx.oracle_options(cs.users, cs.days, 1);
}

/// The checkpoints of agent `a` recorded so far (rows curve/oracle/vs_baseline), in step order.
std::vector<CheckpointValue> recorded_checkpoints(const ExperimentContext& ctx, const std::string& agent) {
  std::vector<CheckpointValue> c;
  for (const MetricRow& r : ctx.M)
    if (r.section == keys::kCurve && r.subject == agent && r.metric == keys::kOracleVsBaseline && r.rep)
      c.push_back({*r.rep, r.value, r.ci_high ? *r.ci_high - r.value : std::nan("")});
  std::sort(c.begin(), c.end(), [](const CheckpointValue& x, const CheckpointValue& y) { return x.step < y.step; });
  return c;
}

/// The baseline's values on the checkpoints' users, computed once.
const OracleUserValues& checkpoint_reference(ExperimentContext& ctx) {
  if (!ctx.convergence_reference)
    ctx.convergence_reference = evaluate_policy(ctx.sc, keys::kBaseline,
                                                std::make_shared<BaselinePolicy>(ctx.sc.fusion), checkpoint_oracle(ctx));
  return *ctx.convergence_reference;
}

/// The rule of the experiment's convergence block.
ConvergenceRule convergence_rule(ExperimentContext& ctx) {
  const ConvergenceSpec& cs = *ctx.ex.convergence;
  ConvergenceRule rule;
  rule.window = cs.window;
  rule.min_step = cs.min_step;
  rule.tolerance = cs.tolerance_percent / 100.0 * std::abs(checkpoint_reference(ctx).level.at(0));
  return rule;
}

/// Whether agent `name` has its row training/converged (a resumed run may).
bool has_verdict(const ExperimentContext& ctx, const std::string& name) {
  return std::any_of(ctx.M.begin(), ctx.M.end(), [&](const MetricRow& r) {
    return r.section == keys::kTraining && r.subject == name && r.metric == keys::kConverged;
  });
}

/// Row training/converged: the verdict where the training stopped.
void record_verdict(ExperimentContext& ctx, const AgentSpec& a, CurveVerdict verdict, std::size_t checkpoints,
                    const ConvergenceRule& rule) {
  ctx.M.push_back(plain(keys::kTraining, a.name, keys::kConverged, verdict == CurveVerdict::kConverged ? 1.0 : 0.0,
                        std::nullopt,
                        json{{keys::detail::kVerdict, verdict_name(verdict)},
                             {keys::detail::kCheckpoints, checkpoints},
                             {keys::detail::kWindow, rule.window},
                             {keys::detail::kMinStep, rule.min_step},
                             {keys::detail::kTolerance, rule.tolerance}}
                            .dump()));
}

}  // namespace

void record_convergence_checkpoint(ExperimentContext& ctx, const AgentSpec& a) {
  const OracleOptions o = checkpoint_oracle(ctx);
  const OracleUserValues& reference = checkpoint_reference(ctx);
  const agents::Agent& agent = *ctx.agent.at(a.name);
  const PolicyPtr snapshot(agent.clone());
  const OracleUserValues v = evaluate_policy(ctx.sc, a.name, snapshot, o);
  const OracleDifference d = paired_difference(v, reference, 0);  // reward per user-day
  const OracleEstimate& e = v.value.metrics.at(0);
  MetricRow level = plain(keys::kCurve, a.name, keys::kOracleReward, e.value, o.users);
  level.rep = agent.steps_trained();
  level.ci_low = e.value - e.half_width;
  level.ci_high = e.value + e.half_width;
  ctx.M.push_back(std::move(level));
  MetricRow diff = plain(keys::kCurve, a.name, keys::kOracleVsBaseline, d.difference, o.users,
                         json{{keys::detail::kReference, d.reference},
                              {keys::detail::kRelativePercent,
                               std::isfinite(d.relative_percent) ? json(d.relative_percent) : json(nullptr)}}
                             .dump());
  diff.rep = agent.steps_trained();
  diff.ci_low = d.difference - d.half_width;
  diff.ci_high = d.difference + d.half_width;
  ctx.M.push_back(std::move(diff));
}

namespace {

/// Stage 2 with a convergence block: trains `a` checkpoint by checkpoint until
/// its curve is flat or its steps are done; records the verdict.
void train_until_flat(ExperimentContext& ctx, const AgentSpec& a, const agents::Dataset& data,
                      const agents::ProgressCallback& progress) {
  const ConvergenceSpec& cs = *ctx.ex.convergence;
  agents::Agent& agent = *ctx.agent.at(a.name);
  const ConvergenceRule rule = convergence_rule(ctx);
  CurveVerdict verdict = CurveVerdict::kTooShort;
  std::size_t evaluated = 0;
  for (const std::int64_t step : checkpoint_steps(cs.first_step, a.steps)) {
    const std::int64_t done = agent.steps_trained();
    if (step > done) train_agent(ctx, a, data, step - done, progress);
    if (ctx.failed.count(a.name)) return;  // diverged: reported by train_agent
    std::vector<CheckpointValue> c = recorded_checkpoints(ctx, a.name);
    if (c.empty() || c.back().step < step) {  // a resumed run may have it already
      record_convergence_checkpoint(ctx, a);
      c = recorded_checkpoints(ctx, a.name);
    }
    evaluated = c.size();
    verdict = assess_curve(c, rule);
    ctx.log("convergence: " + a.name + " at step " + std::to_string(agent.steps_trained()) + ": reward/user-day " +
            std::to_string(c.back().difference).substr(0, 7) + " +- " + std::to_string(c.back().half_width).substr(0, 6) +
            " vs baseline, " + verdict_name(verdict));
    if (verdict == CurveVerdict::kConverged && cs.stop) break;
  }
  record_verdict(ctx, a, verdict, evaluated, rule);
}

}  // namespace

void check_batches_split(const Scenario& sc, const ExperimentSpec& ex, const ExperimentOptions& opt) {
  if (!opt.data_parallel || !opt.cluster || opt.cluster->size() == 1) return;
  const int n = opt.cluster->size();
  for (const AgentSpec& a : ex.agents) {
    const nlohmann::json h = agents::make_agent(a.type, a.hyperparameters, kStateDim, sc.action_dim(), 0)->hyperparameters();
    if (h.contains("batch_size") && h.at("batch_size").get<std::int64_t>() % n != 0)
      throw ExperimentError("experiment: agent " + a.name + ": batch_size " + h.at("batch_size").dump() +
                            " is not a multiple of the " + std::to_string(n) +
                            " ranks --data-parallel trains over; set one that is, or run on other ranks");
  }
  const bool acceptance = std::any_of(ex.progressive.begin(), ex.progressive.end(),
                                      [](const ProgressiveSpec& p) { return p.accept_if_better; });
  const bool fqe = std::any_of(ex.ope.methods.begin(), ex.ope.methods.end(), [](const std::string& m) {
    return m == keys::kFqe || m == keys::kConservativeOpe;
  });
  if (((!ex.ope.dataset.empty() && fqe) || acceptance) && ex.ope.batch % n != 0)
    throw ExperimentError("experiment: offline.ope.batch " + std::to_string(ex.ope.batch) +
                          " is not a multiple of the " + std::to_string(n) +
                          " ranks --data-parallel fits FQE over; set one that is, or run on other ranks");
}

void create_agents(ExperimentContext& ctx) {
  for (std::size_t i = 0; i < ctx.ex.agents.size(); ++i) {
    const AgentSpec& a = ctx.ex.agents[i];
    ctx.agent[a.name] =
        agents::make_agent(a.type, a.hyperparameters, ctx.S, ctx.A, ctx.sub_seed(kAgentSeed, i));
  }
}

void train_agent(ExperimentContext& ctx, const AgentSpec& a, const agents::Dataset& data, std::int64_t steps,
                 const agents::ProgressCallback& progress, const Policy* reference) {
  const auto t = Clock::now();
  agents::Agent& agent = *ctx.agent.at(a.name);
  // The learning curve: about 50 points per training of a.steps steps (a
  // progressive round, or the training stage), at the same steps whether or
  // not the training was resumed.
  agents::CurveProbe probe(data, 1024, agents::agent_gamma(agent));
  if (reference) probe.set_reference(*reference);
  const agents::ProgressCallback with_curve = [&](const agents::TrainProgress& p) {
    const std::int64_t done = agent.steps_trained();
    if (agents::is_curve_step((done - 1) % std::max<std::int64_t>(1, a.steps) + 1, a.steps)) {
      const agents::CurvePoint c = probe.measure(agent, p.losses);
      const auto row = [&](const std::string& metric, double value) {
        MetricRow r = plain(keys::kCurve, a.name, metric, value, probe.size());
        r.rep = done;
        ctx.M.push_back(std::move(r));
      };
      for (const auto& [loss, value] : c.losses) row(keys::kLossPrefix + loss, value);
      row(keys::kMeanQ, c.mean_q);
      row(keys::kOutsideBounds, c.outside_bounds);
      row(keys::kBaselineDistance, c.baseline_distance);
      row(keys::kQData, c.q_data);
      row(keys::kMcReturn, c.mc_return);
      row(keys::kDrift, c.drift);
    }
    if (progress) progress(p);
  };
  agent.set_data_parallel(ctx.shards());
  try {
    agent.train(data, steps, with_curve);
  } catch (const agents::TrainingDiverged& e) {
    ctx.failed.insert(a.name);
    ctx.M.push_back(plain(keys::kTraining, a.name, keys::kDivergedAtStep,
                          static_cast<double>(e.step()), std::nullopt,
                          json{{"error", e.what()}}.dump()));
    ctx.log("training " + a.name + " diverged: " + e.what());
  }
  ctx.train_seconds[a.name] += seconds_since(t);
  // Under shards(), every rank's shard together (counts far below 2^53: exact in a double).
  ctx.train_rows[a.name] =
      static_cast<std::int64_t>(sum_over_ranks(ctx.shards(), {static_cast<double>(data.size())})[0]);
}

bool every_rank_threw(const ExperimentContext& ctx, const std::exception& e) {
  return !ctx.shards() || dynamic_cast<const std::invalid_argument*>(&e) != nullptr ||
         dynamic_cast<const agents::TrainingDiverged*>(&e) != nullptr;
}

std::string shard_name(const ExperimentContext& ctx) {
  const Cluster& ranks = *ctx.shards();
  return "MPI rank " + std::to_string(ranks.rank()) + "'s users (u mod " + std::to_string(ranks.size()) +
         " == " + std::to_string(ranks.rank()) + ")";
}

void train_agents(ExperimentContext& ctx) {
  for (const AgentSpec& a : ctx.ex.agents) {
    const bool progressive =
        std::any_of(ctx.ex.progressive.begin(), ctx.ex.progressive.end(),
                    [&](const ProgressiveSpec& p) { return p.agent == a.name; });
    if (!progressive && !ctx.failed.count(a.name)) {
      // A resumed run's agent continues where its checkpoint left it.
      const std::int64_t done = ctx.agent.at(a.name)->steps_trained();
      auto last = Clock::now();
      const agents::ProgressCallback checkpoint = [&](const agents::TrainProgress& p) {
        if (p.step == p.total_steps || seconds_since(last) < ctx.opt.checkpoint_seconds) return;
        save_checkpoint(ctx, Done::kExploration, 0, /*with_agents=*/true);
        ctx.log("checkpoint: " + a.name + " at step " + std::to_string(ctx.agent.at(a.name)->steps_trained()) +
                " of " + std::to_string(a.steps));
        last = Clock::now();
      };
      if (ctx.ex.convergence) {
        if (!has_verdict(ctx, a.name)) train_until_flat(ctx, a, dataset_for(ctx, a), checkpoint);
      } else {
        train_agent(ctx, a, dataset_for(ctx, a), std::max<std::int64_t>(0, a.steps - done), checkpoint);
      }
      ctx.log("trained " + a.name + " (" + a.type + ") on " + a.dataset + ": " +
              std::to_string(ctx.train_rows[a.name]) + " transitions, " +
              std::to_string(ctx.agent.at(a.name)->steps_trained()) + " steps, " + std::to_string(ctx.train_seconds[a.name]).substr(0, 5) + " s");
      // Trained: a clone (the same parameters, training state and streams)
      // without the minibatch workspaces, which would otherwise stay held
      // while the next agents train.
      ctx.agent[a.name] = ctx.agent.at(a.name)->clone();
    }
    // A progressive agent's checkpoints are its rounds (explore): its verdict,
    // without a stop (its rounds are the protocol's).
    if (progressive && ctx.ex.convergence && !ctx.failed.count(a.name) && !has_verdict(ctx, a.name)) {
      const ConvergenceRule rule = convergence_rule(ctx);
      const std::vector<CheckpointValue> c = recorded_checkpoints(ctx, a.name);
      record_verdict(ctx, a, assess_curve(c, rule), c.size(), rule);
    }
    // A resumed run's checkpoint may come after this agent's rows.
    const bool reported = std::any_of(ctx.M.begin(), ctx.M.end(), [&](const MetricRow& r) {
      return r.section == keys::kTraining && r.subject == a.name && r.metric == keys::kTransitions;
    });
    if (reported) continue;
    const agents::Agent& agent = *ctx.agent.at(a.name);
    ctx.M.push_back(plain(keys::kTraining, a.name, keys::kTransitions,
                          static_cast<double>(ctx.train_rows[a.name])));
    ctx.M.push_back(
        plain(keys::kTraining, a.name, keys::kSteps, static_cast<double>(agent.steps_trained())));
    ctx.M.push_back(plain(
        keys::kTraining, a.name, keys::kSeconds, ctx.train_seconds[a.name], std::nullopt,
        json{{keys::detail::kType, a.type},
             {keys::detail::kDataset, a.dataset},
             {keys::detail::kFormulation, agents::to_string(formulation(ctx.dataset(a.dataset)))},
             {keys::detail::kDiscountSeconds, ctx.dataset(a.dataset).discount_seconds},
             {keys::detail::kRewardScale, agent.reward_scale()},
             {keys::detail::kHyperparameters, agent.hyperparameters()}}
            .dump()));
  }
}

void keep_agents(ExperimentContext& ctx) {
  std::vector<AgentRow> rows;
  for (const AgentSpec& a : ctx.ex.agents) {
    if (ctx.failed.count(a.name)) continue;  // diverged: reported, not kept
    const agents::Agent& agent = *ctx.agent.at(a.name);
    AgentRow r;
    r.name = a.name;
    r.type = a.type;
    r.steps = agent.steps_trained();
    r.source = "dataset " + a.dataset;
    r.hyperparameters = agent.hyperparameters().dump();
    r.data = agent.to_bytes();
    r.bytes = static_cast<std::int64_t>(r.data.size());
    rows.push_back(std::move(r));
  }
  if (!rows.empty()) ctx.rec.write_agents(rows);
}

}  // namespace mtf::experiments
