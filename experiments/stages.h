// The stages of run_experiment (internal to experiments/), one file each, in
// protocol order; each reads and extends the shared ExperimentContext and
// appends its metric rows in a fixed order (see experiment.h for the protocol).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>

#include "experiments/context.h"
#include "metrics/gauc.h"

namespace mtf::experiments {

// training.cpp
/// With --data-parallel on N ranks (ExperimentOptions::data_parallel): every
/// agent's batch_size and offline.ope.batch (where FQE runs) must split over
/// the N ranks; throws ExperimentError naming the first that does not. Called
/// before the run database is opened, so that a refused run leaves nothing.
void check_batches_split(const Scenario& sc, const ExperimentSpec& ex, const ExperimentOptions& opt);
/// Creates every agent of the experiment block, untrained, with its own sub-seed.
void create_agents(ExperimentContext& ctx);
/// Trains agent `a` on `data` for `steps` steps; a diverged training is
/// reported (section training) and the agent marked failed. `progress` as for
/// Agent::train. `reference`: the policy the curve's drift is measured from
/// (a progressive round's deployed policy); none: drift is NaN.
void train_agent(ExperimentContext& ctx, const AgentSpec& a, const agents::Dataset& data, std::int64_t steps,
                 const agents::ProgressCallback& progress = {}, const Policy* reference = nullptr);
/// Whether an error caught in a computation over the ranks' shards
/// (ExperimentContext::shards) was thrown by every rank together, so that the
/// run may record it and go on: a bad option (std::invalid_argument, decided
/// on options and on counts the ranks share) or a divergence (TrainingDiverged,
/// thrown on every rank at once). Any other error may be one rank's alone
/// (memory, say) and must end the job, or the ranks would fall out of step in
/// their next exchange. Always true when the data are not sharded. This rests
/// on the estimators' std::invalid_argument depending only on what the ranks
/// share (options, summed counts, shapes): a policy's act() throws it for
/// sizes only, and a check that finds the ranks already out of step throws
/// std::logic_error instead.
bool every_rank_threw(const ExperimentContext& ctx, const std::exception& e);
/// "MPI rank r's users (u mod N == r)": the share of the rows this rank trains
/// on when training is data-parallel (ExperimentContext::shards).
std::string shard_name(const ExperimentContext& ctx);
/// Stage 2: trains each agent that does not explore progressively on its
/// dataset, for the steps it still lacks (a resumed run: Agent::steps_trained),
/// with checkpoints every ExperimentOptions::checkpoint_seconds; the training
/// rows of every agent.
void train_agents(ExperimentContext& ctx);
/// With a convergence block: agent `a` as it is now through the oracle, paired
/// with the baseline on the checkpoints' users; rows curve/oracle/... at its
/// steps trained (training.cpp; explore() calls it after each progressive round).
void record_convergence_checkpoint(ExperimentContext& ctx, const AgentSpec& a);
/// After stage 2: every trained agent that did not diverge goes into the run
/// database's table agents (its agent file's bytes), where `RUN.sqlite:NAME`
/// finds it (agent_refs.h).
void keep_agents(ExperimentContext& ctx);

struct ResumePoint;

// oracle_stage.cpp
/// Stage 4b (with an "oracle" block): every policy under evaluation and the
/// behaviour policies of the agents' datasets on the same fresh users with
/// common random numbers (oracle.h); rows of sections oracle and oracle_diff.
void evaluate_with_oracle(ExperimentContext& ctx);

// alignment.cpp
/// Stage 4c (with an "alignment" block): a sweep of constant actions and the
/// baseline through the oracle once per gamma; rows of sections alignment and
/// alignment_tau (what each objective ranks as the reward per user-day does).
void objective_alignment(ExperimentContext& ctx);

// exploration.cpp
/// Stage 1: the scenario's groups for its days, progressive rounds included
/// (their agents train after each round and become the next round's
/// baseline); the exploration cost against the control group; the density of
/// samples near the baseline.
/// A resumed run (Done::kExplorationRound) continues after its last round:
/// the simulator's users, the progressive groups' deployed agents.
void explore(ExperimentContext& ctx, const ResumePoint& rp);

// online_learners.cpp
/// Stage 3: each online learner on its own users; its best policy joins the
/// policies. A checkpoint after every round holds the rounds' observations
/// (a resumed learner replays them: propose and observe are deterministic)
/// and the learner's users; a resumed run (Done::kLearnerRound) continues there.
void run_online_learners(ExperimentContext& ctx, const ResumePoint& rp);

// offline_evaluation.cpp
/// Stage 4: weighted GAUC, Conservative-OPE, FQE and NCIS of every policy.
void evaluate_offline(ExperimentContext& ctx);
// Its weighted GAUC's parts, declared here for its test:
/// The test impressions the weighted GAUC scores, by request: the requests
/// (rows of the collected columns, in column order) and, for each, the range
/// of its impressions in `imp`. Per impression, in ascending user order (as
/// weighted_gauc reads them without a copy), it holds an index and the three
/// inputs the GAUC sums (user, label, weight); the states and the policy's
/// weights are computed a chunk of requests at a time.
struct GaucData {
  std::vector<std::uint32_t> rows;  // request -> row of the columns
  std::vector<std::uint32_t> first; // request r's impressions: imp[first[r] .. first[r + 1])
  std::vector<std::uint32_t> imp;   // test impressions by request: index into `user` (and held)
  std::vector<std::uint32_t> held;  // test impression -> index into Collected::impressions
  std::vector<std::int64_t> user;
  std::vector<std::uint8_t> label;
  std::vector<double> weight;
  std::int64_t clamped = 0;  // weights below 0 set to 0
};

/// The test impressions of `col`: those of a request of `groups` recorded in
/// the columns (a request recorded twice: its last row); the others are left out.
GaucData gauc_data(const Collected& col, const std::vector<int>& groups);
/// Requests whose states, actions and fusion weights are held at once.
constexpr std::size_t kGaucChunk = 8192;
/// The weighted GAUC of `policy` on `g`: every request's action from one
/// stream seeded `seed`, drawn in request (column) order a chunk of
/// kGaucChunk requests at a time; the score of an impression is the log of
/// Formula 1 under its request's fusion weights.
GaucResult policy_gauc(const GaucData& g, const Collected& col, const Policy& policy, const FusionParams& fusion,
                       std::uint64_t seed);

// ab_test.cpp
/// Stage 5: the replicated A/B test of the experiment's arms, from replicate
/// `first_rep` (a resumed run); `after_replicate(rep)` runs after each one.
void run_ab_tests(ExperimentContext& ctx, int first_rep,
                  const std::function<void(int)>& after_replicate);

// resume.cpp
/// The stages after which the run database gets a checkpoint, in protocol order.
enum class Done {
  kNothing,
  kExplorationRound,
  kExploration,
  kTraining,
  kLearnerRound,
  kLearners,
  kOffline,
  kOracle,
  kAbReplicate
};
/// What a resumed run starts from (Done::kNothing: a fresh run).
struct ResumePoint {
  Done done = Done::kNothing;
  int explored_days = 0;  ///< exploration days simulated (Done::kExplorationRound)
  int ab_replicates = 0;  ///< A/B replicates finished
  nlohmann::json state;   ///< the checkpoint's state (resume.cpp)
};
/// Saves a checkpoint after `stage` (flushing the metric rows first): the
/// counters, the learners' policies, the offline and online figures, and with
/// `with_agents` every agent's full training state; returns once it is committed.
/// `count`: the A/B replicates (Done::kAbReplicate) or exploration days
/// (Done::kExplorationRound, which also saves the simulator's users and the
/// deployed agents) done.
void save_checkpoint(ExperimentContext& ctx, Done stage, int count, bool with_agents);
/// For a resumed run (the recorder's checkpoint): restores the metric rows,
/// counters, agents, and the exploration's data; returns how far it got.
ResumePoint restore_checkpoint(ExperimentContext& ctx);
/// The online learners' policies of a checkpoint (the learners finished by
/// then), appended to ctx.policies (after the baseline).
void restore_learner_policies(ExperimentContext& ctx, const ResumePoint& rp);

// ground_truth.cpp
/// Stage 6: every offline metric against the arms' mean online lifts (Kendall tau).
void compare_with_ground_truth(ExperimentContext& ctx);

}  // namespace mtf::experiments
