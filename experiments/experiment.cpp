// The protocol engine (see experiment.h): run_experiment runs the stages of
// stages.h in order over one ExperimentContext (context.h) and closes the run
// database. Each stage has its own file: exploration.cpp, training.cpp,
// online_learners.cpp, offline_evaluation.cpp, ab_test.cpp, ground_truth.cpp.
#include "experiments/experiment.h"

#include "agents/nn/tensor.h"
#include "experiments/context.h"
#include "experiments/metric_keys.h"
#include "experiments/stages.h"
#include "sim/policies.h"

namespace mtf::experiments {

ExperimentResult run_experiment(const Scenario& sc, const ExperimentSpec& ex,
                                const std::filesystem::path& out, const ExperimentOptions& opt) {
  const auto t0 = Clock::now();
  nn::set_num_threads(opt.threads);
  ExperimentContext ctx(sc, ex, out, opt, t0);

  // 1. Exploration (agents are created up front: progressive ones train during it).
  create_agents(ctx);
  explore(ctx);
  // 2. Training.
  train_agents(ctx);
  // The policies under evaluation, in a fixed order: the baseline, the online
  // learners' best, the agents whose training did not diverge.
  ctx.policies.emplace_back(keys::kBaseline, std::make_shared<BaselinePolicy>(sc.fusion));
  // 3. Online learners.
  run_online_learners(ctx);
  ctx.flush();
  for (const AgentSpec& a : ex.agents)
    if (!ctx.failed.count(a.name))
      ctx.policies.emplace_back(a.name,
                                std::shared_ptr<const Policy>(std::move(ctx.agent.at(a.name))));
  // 4. Offline evaluation.
  evaluate_offline(ctx);
  ctx.flush();
  // 5. Online A/B and 6. the ground truth: offline metrics against the online lifts.
  if (ex.ab) {
    run_ab_tests(ctx);
    compare_with_ground_truth(ctx);
  }

  ctx.result.wall_seconds = seconds_since(t0);
  ctx.M.push_back(plain(keys::kRun, keys::kAll, keys::kWallSeconds, ctx.result.wall_seconds));
  ctx.M.push_back(plain(keys::kRun, keys::kAll, keys::kSessionsCapped, static_cast<double>(ctx.sessions_capped)));
  if (ctx.sessions_capped > 0)
    ctx.log(std::to_string(ctx.sessions_capped) +
            " sessions were ended by the scenario's limits (see docs/scenario-format.md#limits)");
  ctx.flush();
  std::vector<SummaryRow> summary;
  ctx.rec.finish(summary, ctx.result.wall_seconds);
  return std::move(ctx.result);
}

}  // namespace mtf::experiments
