// The protocol engine: a paper's whole experiment from one scenario file.
//
// A scenario with an "experiment" block (docs/experiments.md) runs as:
//   1. Exploration: the scenario's groups for its days, each with its policy
//      (exploration policies record baseline, bounds and density). A group may
//      explore in progressive rounds: after each round an agent trains on the
//      group's data so far and becomes the next round's baseline.
//   2. Training: each agent trains on a named dataset (a union of groups, an
//      optional time window, an optional reward variant).
//   3. Online learners (ES, BO, grid search): rounds of simulated days on their
//      own users; the user-days they cost are reported.
//   4. Offline evaluation of every policy: weighted GAUC on the test impressions
//      (IntegratedRL-MTF section 4.3.1), Conservative-OPE, FQE and NCIS (BatchRL-MTF).
//   5. Online A/B: arms on disjoint random groups of a fresh user sample for D
//      days, replicated over user seeds; lifts against the control arm with
//      delta-method CIs and Welch p-values, optional CUPED with a pre-period.
//   6. Ground truth: every offline metric set against the online lifts (Kendall tau).
// Everything lands in one run database: the exploration's transitions and
// impressions, and table `metrics` with every figure (read by `mtfsim report`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cluster.h"
#include "experiments/metric_keys.h"
#include "metrics/user_metrics.h"
#include "results/recorder.h"
#include "sim/scenario.h"

namespace mtf::experiments {

/// Invalid experiment block: what() names the JSON path and the fix.
class ExperimentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ProgressiveSpec {
  std::string group;   ///< exploration group that explores in rounds
  std::string agent;   ///< the agent (of `agents`) trained after each round
  int rounds = 5;      ///< the scenario's days must divide into this many rounds
  /// "always" (the paper's section 4.6: each round's agent becomes the new
  /// baseline) or "if_better": the newly trained agent replaces the deployed
  /// baseline only when an off-policy estimate on held-out data rates it
  /// higher (docs/experiments.md, "Progressive rounds that keep the baseline").
  bool accept_if_better = false;
  /// if_better: the share of the group's users whose transitions are held out
  /// of training (every round) and estimate both policies on.
  double holdout = 0.2;
  /// if_better: the estimator that decides, "fqe" or "conservative_ope", with
  /// offline.ope's settings.
  std::string check = "fqe";
};

struct DatasetSpec {
  std::string name;
  std::vector<std::string> groups;  ///< exploration groups whose transitions it holds
  double time_from = 0, time_to = 1;  ///< window as fractions of the exploration period
  /// "formulation": "cross_session" chains each user's sessions
  /// (agents::Formulation::kCrossSession); the default "session" is the papers'.
  bool cross_session = false;
  /// "discount_seconds": > 0 discounts each transition by the simulated time
  /// to its s', gamma^(elapsed / discount_seconds)
  /// (agents::Dataset::discount_by_elapsed_time); 0, the default: one step of
  /// gamma per request.
  double discount_seconds = 0;
};

struct AgentSpec {
  std::string name;      ///< as reported ("BatchRL-MTF")
  std::string type;      ///< agents::make_agent name ("bcq")
  std::string dataset;
  std::int64_t steps = 2000;  ///< gradient steps (per round when progressive)
  nlohmann::json hyperparameters = nlohmann::json::object();
  std::optional<RewardParams> reward;  ///< reward variant: Formula 2 weights recomputed from the behaviours
};

struct LearnerSpec {
  std::string name;      ///< "ES", "BO"
  std::string type;      ///< "es", "bo", "grid"
  int rounds = 5;
  int days_per_round = 1;
  std::int64_t users = 8000;  ///< users of the learner's own online population
  nlohmann::json hyperparameters = nlohmann::json::object();
};

struct OpeSpec {
  std::string dataset;   ///< evaluation data (empty: no OPE)
  /// Further evaluation sets, each estimated by every method as well; their
  /// metrics are named METHOD@DATASET ("fqe@heldout_noise"). BatchRL-MTF
  /// evaluates on its own mixed data, where the uniform-random group gives
  /// every action support; a set from the Gaussian action-noise group alone
  /// shows what the estimators do without it.
  std::vector<std::string> extra_datasets;
  std::vector<std::string> methods{keys::kConservativeOpe, keys::kFqe, keys::kNcis};
  std::int64_t steps = 2000;
  int batch = 512;
  int hidden = 256;
  double gamma = 0.95;
  /// Soft target update of the FQE estimators (agents::FqeOptions::tau); 1 is
  /// Algorithm 2 read literally: the backup uses the previous iterate Q_k.
  double tau = 0.01;
  double cql_alpha = 0.5e-3;  ///< agents::kPaperConservativeAlpha; 0 gives FQE's estimate
  /// "reward_scale": "mean_abs" divides each evaluation set's rewards by their
  /// mean |reward| during the fits (agents::FqeOptions::reward_scale), so that
  /// alpha means the same on any world; "none" (false, the default) keeps them.
  bool reward_scale_mean_abs = false;
  double ncis_cap = 10.0;
  double ncis_bandwidth = 0.1;
};

struct AbSpec {
  int days = 7;
  int pre_days = 0;          ///< CUPED pre-period (every arm runs the control policy)
  std::int64_t users = 20000;
  int replicates = 1;
  std::string control;
  std::vector<std::string> arms;  ///< includes the control
  std::string primary = keys::kValidPerUserDay;  ///< metric the offline-vs-online agreement uses
};

/// The oracle stage (oracle.h): every policy under evaluation and the
/// behaviour policies that logged the agents' data, on the same fresh users
/// with common random numbers; paired differences against the baseline and
/// each agent against its data's behaviour policies.
struct OracleSpec {
  std::int64_t users = 20000;
  int days = 3;
  double gamma = 0.95;  ///< of the in-session discounted return
};

/// What the objective sees (alignment.cpp): `actions` constant actions drawn
/// uniformly on the action box, and the baseline, through the oracle on
/// `users` x `days` (their own seed, kOracleUsers index 2), once per gamma.
struct AlignmentSpec {
  int actions = 16;
  std::int64_t users = 4000;
  int days = 4;
  std::vector<double> gammas{0.0, 0.9, 0.95, 1.0};
};

/// Training until the curve is flat (convergence.h). Each agent of the
/// training stage (not the progressive ones) is checked at doubling steps,
/// first_step, 2 first_step, ... up to its `steps`, which become a cap: the
/// oracle's reward per user-day of the agent's policy at that step, paired
/// with the baseline policy on the same `users` x `days` (their own seed,
/// kOracleUsers index 1). The training stops at the first checkpoint where the
/// last `window` checkpoints at or after `min_step` agree within their
/// intervals, or `tolerance_percent` of the baseline's value (assess_curve),
/// unless `stop` is false.
struct ConvergenceSpec {
  std::int64_t first_step = 400;
  std::int64_t min_step = 1600;
  std::int64_t users = 2000;
  int days = 2;
  int window = 3;
  double tolerance_percent = 0.5;
  bool stop = true;
};

struct ExperimentSpec {
  std::vector<ProgressiveSpec> progressive;
  std::vector<DatasetSpec> datasets;
  std::vector<AgentSpec> agents;
  std::vector<LearnerSpec> learners;
  std::string gauc_dataset;      ///< test dataset (its groups record impressions); empty: no GAUC
  std::string exploration_control;  ///< group the exploration cost is measured against (empty: none)
  OpeSpec ope;
  std::optional<AbSpec> ab;
  std::optional<OracleSpec> oracle;
  std::optional<ConvergenceSpec> convergence;
  std::optional<AlignmentSpec> alignment;
  nlohmann::json paper = nlohmann::json::object();  ///< published numbers for the report
  /// The protocol's discount ("gamma" of the experiment block): when given, the
  /// default of every agent that has a gamma (its hyperparameters' "gamma"
  /// wins), of the off-policy estimators (offline.ope.gamma wins) and of the
  /// oracle's discounted return (oracle.gamma wins), so that one protocol's
  /// agents optimise, and are judged on, one objective. Absent: each agent
  /// keeps its paper's default (0.99, 0.95 or 0.9) and the others 0.95.
  std::optional<double> gamma;
};

/// Parses and validates scenario.experiment_json against the scenario (group
/// names, dimensions, agent types). `origin` prefixes messages (a file name).
/// With `check_hyperparameters` false, agents' and learners' hyperparameters are
/// kept as written without building the agents to check them (what a report of
/// a finished run needs).
ExperimentSpec parse_experiment(const Scenario& scenario, const std::string& origin,
                                bool check_hyperparameters = true);

struct ExperimentOptions {
  int threads = 1;
  bool quiet = false;
  /// Continue the killed run in `<out>.partial` from its last completed stage
  /// (exploration, training, online learners, offline evaluation, each A/B
  /// replicate); the result is the uninterrupted run's, every table but timings.
  /// Without a .partial file the run starts from the beginning.
  bool resume = false;
  /// Replace `out` even when it is not a run database, and discard an
  /// unfinished `<out>.partial` instead of refusing to start.
  bool force = false;
  /// During the training stage, a checkpoint (every agent's training state)
  /// at the first training step after this many seconds since the last one;
  /// a resumed run continues each agent's training from there, to the same bits.
  double checkpoint_seconds = 300;
  /// One line per stage and round, for the terminal; null: silent.
  std::function<void(const std::string&)> log;
  /// The MPI ranks (core/cluster.h): every rank runs the same protocol; every
  /// simulated stage (exploration, online learners' rounds, oracle, A/B) shards
  /// its users over them, every rank receives every row and trains the same
  /// agents to the same bits (unless data_parallel), and rank 0 alone writes the run database
  /// (README, "Running at scale"); a resumed run's rank 0 hands the others its
  /// checkpoint and rows (experiments/resume.cpp). Null: this process alone.
  const Cluster* cluster = nullptr;
  /// With more than one rank: the exploration's rows are sharded, rank r
  /// holding the transitions and impressions of the users u with u mod N == r
  /// (ExperimentContext::shards), so memory per rank falls with the ranks, and
  /// what reads them runs over the ranks: the offline agents train
  /// data-parallel (Agent::set_data_parallel: each rank samples its shard, the
  /// gradients averaged in rank order), FQE and Conservative-OPE fit the same
  /// way (FqeOptions::ranks), NCIS, the weighted GAUC and the exploration's
  /// counts add the ranks' sums in rank order, the action probe gathers each
  /// rank's share of states. Deterministic for a given rank count, not one
  /// process's bits (other minibatches and draws); the learning curves are
  /// measured on rank 0's rows. The simulated stages (exploration, online
  /// learners, oracle, A/B) are one process's whatever the ranks, given the
  /// agents. Ignored on one rank.
  bool data_parallel = false;
  /// Out of core: the exploration's transitions go to column files in this new
  /// directory as they are recorded (core/column_file.h), and the datasets map
  /// them instead of holding them; the directory is removed when the run ends.
  /// The same figures as in memory. A resumed run reads the run database's
  /// transitions into them in chunks of chunk_rows. Empty: in memory.
  std::filesystem::path out_of_core;
  std::size_t chunk_rows = 100'000;
};

struct ExperimentResult {
  std::vector<MetricRow> metrics;  ///< also written to the database
  double wall_seconds = 0;
};

/// Runs the whole protocol and writes `out` (the run database). The run is
/// written to `<out>.partial`, with a checkpoint after every stage, and
/// renamed onto `out` when it finishes: an earlier `out` stays untouched until
/// then. Refuses (ExperimentError) to start over an unfinished `<out>.partial`
/// unless resuming or forced, and (RecordError) to replace a file that is not
/// a run database unless forced.
ExperimentResult run_experiment(const Scenario& scenario, const ExperimentSpec& spec,
                                const std::filesystem::path& out, const ExperimentOptions& options);


}  // namespace mtf::experiments
