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
  std::error_code ec;
  if (!opt.resume && !opt.force && std::filesystem::exists(partial_path(out), ec))
    throw ExperimentError(partial_path(out).string() +
                          " holds an unfinished run (killed or failed): continue it with --resume, or pass "
                          "--force to discard it and start again");
  check_batches_split(sc, ex, opt);
  ExperimentContext ctx(sc, ex, out, opt, t0);

  // Agents are created up front (progressive ones train during the
  // exploration); a resumed run then takes back what its checkpoint saved.
  create_agents(ctx);
  const ResumePoint rp = restore_checkpoint(ctx);
  // 1. Exploration.
  if (rp.done < Done::kExploration) {
    explore(ctx, rp);
    save_checkpoint(ctx, Done::kExploration, 0, /*with_agents=*/true);
  }
  // 2. Training.
  if (rp.done < Done::kTraining) {
    train_agents(ctx);
    keep_agents(ctx);
    save_checkpoint(ctx, Done::kTraining, 0, /*with_agents=*/true);
  }
  // The policies under evaluation, in a fixed order: the baseline, the online
  // learners' best, the agents whose training did not diverge.
  ctx.policies.emplace_back(keys::kBaseline, std::make_shared<BaselinePolicy>(sc.fusion));
  // 3. Online learners.
  if (rp.done >= Done::kLearnerRound) restore_learner_policies(ctx, rp);
  if (rp.done < Done::kLearners) {
    run_online_learners(ctx, rp);
    save_checkpoint(ctx, Done::kLearners, 0, false);
  }
  // Each as a clone (the same parameters, normalisation and streams), so the
  // trained agent's workspaces (its minibatches' activations and gradients, a
  // few MB per network) go with it.
  for (const AgentSpec& a : ex.agents)
    if (!ctx.failed.count(a.name)) {
      ctx.policies.emplace_back(a.name, std::shared_ptr<const Policy>(ctx.agent.at(a.name)->clone()));
      ctx.agent.at(a.name).reset();
    }
  // An "if_better" progressive group ends with the last agent its checks
  // accepted, or its starting centre when none was: evaluated beside the
  // agent (the last trained) as deployed:AGENT, also when a later round's
  // training diverged.
  for (const ProgressiveSpec& p : ex.progressive) {
    if (!p.accept_if_better) continue;
    const auto d = ctx.deployed.find(p.agent);
    ctx.policies.emplace_back(keys::kDeployedPrefix + p.agent,
                              d != ctx.deployed.end()
                                  ? PolicyPtr(d->second)
                                  : around_policy(sc.groups[static_cast<std::size_t>(group_index(sc, p.group))].policy, sc));
  }
  // 4. Offline evaluation.
  if (rp.done < Done::kOffline) {
    evaluate_offline(ctx);
    save_checkpoint(ctx, Done::kOffline, 0, false);
  }
  // 4b. The oracle: true values on the same users, paired.
  // 4c. What the objective sees (checkpointed with the oracle).
  if ((ex.oracle || ex.alignment) && rp.done < Done::kOracle) {
    if (ex.oracle) evaluate_with_oracle(ctx);
    if (ex.alignment) objective_alignment(ctx);
    save_checkpoint(ctx, Done::kOracle, 0, false);
  }
  // 5. Online A/B (a checkpoint after each replicate) and 6. the ground
  // truth: offline metrics against the online lifts.
  if (ex.ab) {
    run_ab_tests(ctx, rp.done == Done::kAbReplicate ? rp.ab_replicates : 0,
                 [&ctx](int rep) { save_checkpoint(ctx, Done::kAbReplicate, rep + 1, false); });
    compare_with_ground_truth(ctx);
  }

  ctx.result.wall_seconds = seconds_since(t0);
  ctx.M.push_back(plain(keys::kRun, keys::kAll, keys::kWallSeconds, ctx.result.wall_seconds));
  ctx.M.push_back(plain(keys::kRun, keys::kAll, keys::kRanks, ctx.opt.cluster ? ctx.opt.cluster->size() : 1));
  if (ctx.shards()) ctx.M.push_back(plain(keys::kRun, keys::kAll, keys::kDataParallel, 1));
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
