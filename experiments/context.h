// What the stages of one experiment share (internal to experiments/): the
// scenario and its experiment block, the exploration's simulator and run
// database, the data it collected, the agents, the policies under evaluation,
// the offline and online figures, and the metric rows written so far. The
// stages (stages.h) read and extend it in protocol order.
#pragma once

#include <array>
#include <chrono>
#include <compare>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "agents/agent.h"
#include "agents/dataset.h"
#include "agents/ope.h"
#include "core/column_file.h"
#include "core/policy.h"
#include "core/transitions.h"
#include "experiments/experiment.h"
#include "experiments/oracle.h"
#include "metrics/reward.h"
#include "metrics/stats.h"
#include "results/recorder.h"
#include "sim/simulator.h"

namespace mtf::experiments {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0);

/// Index of the scenario's group `name`, or -1.
int group_index(const Scenario& s, const std::string& name);

/// Sub-seeds of the experiment (Stream::kExperiment, purpose, index).
enum Purpose : std::uint64_t {
  kLearnerUsers = 1,
  kAbUsers = 2,
  kAgentSeed = 3,
  kEvalDraws = 4,
  kLearnerSeed = 5,
  kOpeSeed = 6,
  kOracleUsers = 7,
  kActionProbe = 8,
  kAlignmentActions = 9,
  kProgressiveHoldout = 10  ///< which users a progressive round's acceptance test holds out, and its estimator's seed
};

/// What the weighted GAUC reads of one recorded impression, held from the
/// exploration to the offline evaluation (out of core: in a scratch file
/// beside the column files): 56 bytes, where the ImpressionRow it comes from
/// has 72 (the group, the position and the item stay in the run database
/// only). No implicit padding: the bytes written to that file are all set.
struct HeldImpression {
  std::int64_t user = 0;
  std::int32_t session = 0, step = 0;
  float reward = 0;                     ///< Formula 2 over this item's behaviours alone
  std::array<float, kNumTasks> pred{};  ///< the MTL predictions the ranker fused
  bool valid = false;                   ///< label: watched more than 10 s
  std::array<std::uint8_t, 3> padding{};

  static HeldImpression of(const ImpressionRow& r) {
    return {r.user, r.session, r.step, r.reward, r.pred, r.valid, {}};
  }
};
static_assert(sizeof(HeldImpression) == 56, "HeldImpression: every byte a field (written to scratch files)");

/// What the exploration recorded, for datasets and GAUC: the transitions in
/// memory, or (ExperimentOptions::out_of_core) in column files written as the
/// exploration records and memory-mapped (core/column_file.h); the same values
/// either way, so the same datasets, training and figures.
struct Collected {
  /// In memory: all groups, in recorded order. Shared: the datasets are views
  /// of it, and exploration rounds append to it after some are made. Out of
  /// core it stays empty (its dimensions are the columns').
  std::shared_ptr<TransitionColumns> transitions = std::make_shared<TransitionColumns>();

  Collected() = default;
  Collected(const Collected&) = delete;
  Collected& operator=(const Collected&) = delete;
  ~Collected();  ///< removes the column files, if any
  /// From now on, transitions go to column files in the new directory `dir`,
  /// and impressions to a file of HeldImpressions beside them.
  void start_out_of_core(const std::filesystem::path& dir);
  bool out_of_core() const { return spill_ != nullptr; }
  /// Appends a batch of recorded transitions (same dimensions).
  void add(const TransitionColumns& batch);
  /// Appends a batch's impressions (what the weighted GAUC reads of them).
  void add(std::span<const ImpressionRow> batch);
  /// Makes every transition added so far readable through view() and
  /// dataset() (out of core: writes the column files' header and maps them).
  /// Call before reading; `last`: no more adds (in memory, the impressions'
  /// and the columns' spare capacity is released where it is more than 15%:
  /// reserve() leaves up to 10%; out of core, the column files are closed).
  void seal(bool last = false);
  /// Expects this many times the transitions and impressions added so far in
  /// all (the exploration's days in all over those done), and makes room for
  /// them with a margin of 10%: the columns then grow once, early, instead of
  /// doubling late, when a doubling holds two copies of a large column.
  void reserve(double times);
  /// The transitions sealed so far. In memory the view is valid until the next
  /// add() (the columns may move as they grow); out of core until the next
  /// seal() that maps new rows. Datasets keep what they view alive themselves.
  TransitionColumnsView view() const;
  /// The impressions added so far, in recorded order: all of them in memory
  /// (valid until the next add() or seal()), those sealed so far out of core
  /// (valid until the next seal()).
  std::span<const HeldImpression> impressions() const;
  std::size_t size() const { return view().size(); }
  /// A dataset of rows `rows` of view() (Dataset's view constructor), in the
  /// MDP formulation and with the discount that `spec` asks for. Out of core,
  /// a dataset of at most half the rows views a copy of them in column files
  /// of its own (map_copy_of_rows, in a subdirectory of the scratch
  /// directory, unlinked at once, its disk space freed with the last dataset
  /// of those rows): its row(j) is then j. Not for concurrent calls.
  agents::Dataset dataset(std::span<const std::size_t> rows, const agents::Dataset::RewardOf& reward,
                          const DatasetSpec& spec) const;
  /// Out of core, the column files of datasets' own rows made so far (datasets
  /// of the same rows share one while any of them is alive); 0 in memory.
  int dataset_copies_made() const { return copies_made_; }

 private:
  /// dataset() out of core, before the discount: over a copy of `rows` of at
  /// most half the columns' rows, shared by datasets of the same rows.
  agents::Dataset mapped_dataset(std::span<const std::size_t> rows, const agents::Dataset::RewardOf& reward,
                                 agents::Formulation form) const;
  std::unique_ptr<ColumnFileWriter> spill_;
  std::shared_ptr<const MappedColumns> mapped_;
  std::vector<HeldImpression> impressions_;         ///< in memory
  std::unique_ptr<RecordSpill> impression_spill_;  ///< out of core
  std::filesystem::path dir_;
  bool created_ = false;  ///< the writer created dir_ (removed with the files)
  /// A dataset's rows: their count and two independent hashes of them.
  struct CopyKey {
    std::size_t rows = 0;
    std::uint64_t h1 = 0, h2 = 0;
    auto operator<=>(const CopyKey&) const = default;
  };
  /// Out of core, the datasets' own columns alive, by their rows (dataset()
  /// shares them; one thread at a time); the directories made (dataset-N).
  mutable std::map<CopyKey, std::weak_ptr<const MappedColumns>> copies_;
  mutable int copies_made_ = 0;
};

/// The MDP formulation a dataset block asks for.
inline agents::Formulation formulation(const DatasetSpec& d) {
  return d.cross_session ? agents::Formulation::kCrossSession : agents::Formulation::kSession;
}

/// The rows of `c` of the users u with u mod n == r, in order (a rank's shard
/// of a batch of rows: whole sessions, s' stored as TransitionColumns::push does).
TransitionColumns users_of_rank(const TransitionColumns& c, int n, int r);

/// Indices of the transitions of `groups` recorded in [t_from, t_to) (simulated seconds).

std::vector<std::size_t> select_rows(const TransitionColumnsView& c, const std::vector<int>& groups,
                                     double t_from, double t_to);
/// The reward a dataset learns with: the recorded one (null) or a variant
/// recomputed from the behaviour counts (Formula 2 with other weights).
agents::Dataset::RewardOf reward_function(const RewardParams* reward);
/// The FQE-type estimators' options from offline.ope for an estimate on
/// `data` with `seed`: gamma, steps, batch, hidden, tau, the reward scale,
/// and cql_alpha when `conservative` (0 otherwise: plain FQE).
/// `ranks`: data-parallel over these ranks' shards of the data (FqeOptions::ranks;
/// the reward scale is the union's); null: this process's data. Collective.
agents::FqeOptions fqe_options(const OpeSpec& ope, const agents::Dataset& data, std::uint64_t seed, bool conservative,
                               const Cluster* ranks = nullptr);

struct ResumePoint;  // stages.h

struct ExperimentContext {
  /// Creates the exploration's simulator and opens the run database `out`.
  ExperimentContext(const Scenario& scenario, const ExperimentSpec& spec,
                    const std::filesystem::path& out, const ExperimentOptions& options,
                    Clock::time_point start);

  const Scenario& sc;
  const ExperimentSpec& ex;
  const ExperimentOptions& opt;
  const Clock::time_point t0;
  const int S, A;       ///< state and action dimensions
  const double period;  ///< the exploration's length in simulated seconds

  Simulator sim;  ///< the exploration
  Recorder rec;   ///< the run database
  Collected col;

  /// The agents, created up front (progressive ones train during the
  /// exploration), until they are deployed as policies after the online learners.
  std::map<std::string, std::unique_ptr<agents::Agent>> agent;
  std::map<std::string, double> train_seconds;
  std::map<std::string, std::int64_t> train_rows;
  std::set<std::string> failed;  ///< agents whose training diverged: reported, not deployed
  /// The online learner running now: its rounds' observations so far (JSON:
  /// learner index, then per round the scores as bit patterns and the users)
  /// and its users' state after the last round, for the next checkpoint
  /// (which moves it into the run database: empty after).
  nlohmann::json learner_rounds;
  std::string learner_sim_state;
  /// Progressive exploration: the frozen copy of each agent its group explores around now.
  std::map<std::string, std::shared_ptr<const agents::Agent>> deployed;
  /// Sessions ended by the scenario's limits, over every simulation of every stage.
  std::int64_t sessions_capped = 0;
  /// Datasets, built once per (dataset, reward variant).
  std::map<std::string, std::shared_ptr<const agents::Dataset>> datasets;

  /// The baseline policy's oracle values at the convergence checkpoints' size
  /// (experiment block "convergence"), computed once.
  std::optional<OracleUserValues> convergence_reference;

  /// The policies under evaluation, in a fixed order: the baseline, the
  /// learners' best, the agents that trained.
  std::vector<std::pair<std::string, PolicyPtr>> policies;
  std::map<std::string, std::map<std::string, double>> offline;  ///< metric -> policy -> value
  std::map<std::string, std::map<std::string, std::vector<double>>>
      online;  ///< metric -> arm -> lifts over reps

  ExperimentResult result;
  std::vector<MetricRow>& M = result.metrics;  ///< every row, in write order

  void log(const std::string& line) const;
  /// Writes the rows added since the last flush to the run database.
  void flush();
  /// The rows a resumed run had written before its checkpoint: they are in
  /// the database already.
  void restore_metrics(std::vector<MetricRow> rows);
  std::uint64_t sub_seed(Purpose p, std::uint64_t i) const;
  /// An oracle evaluation of `users` x `days` on users of their own seed
  /// (kOracleUsers, `users_index`: 0 the oracle stage, 1 the convergence
  /// checkpoints, 2 the alignment sweep), with the run's threads and ranks.
  OracleOptions oracle_options(std::int64_t users, int days, std::uint64_t users_index) const;
  const DatasetSpec& dataset(const std::string& name) const;
  std::vector<int> dataset_groups(const DatasetSpec& d) const;
  /// The ranks the exploration's rows are sharded over
  /// (ExperimentOptions::data_parallel with more than one rank): `col` holds
  /// the rows and impressions of this rank's users (u mod N == r: whole
  /// sessions and whole users, so every formulation's episodes stay whole),
  /// and whatever reads them (training, the progressive rounds' acceptance,
  /// the offline evaluation) runs over the ranks, each on its shard. Null:
  /// every rank holds every row and computes what one process would.
  const Cluster* shards() const;
  /// Adds recorded rows (impressions) to `col`: all of them, or under
  /// shards() those of this rank's users.
  void keep(const TransitionColumns& rows);
  void keep(std::span<const ImpressionRow> impressions);
  /// The checkpoint this run resumed from (ExperimentOptions::resume), on
  /// every rank: rank 0's run database holds it, restore_checkpoint() hands
  /// it to the other ranks. Empty for a run started from the beginning.
  const std::optional<Checkpoint>& resumed() const;
  /// Drops blob `key` of the other ranks' copy of the checkpoint once it is
  /// used (a users' state is the size of the population); rank 0's stays
  /// with its recorder.
  void release_resumed(const std::string& key);
  /// The ranks of an MPI run (more than one), or null.
  const Cluster* ranks() const { return opt.cluster && opt.cluster->size() > 1 ? opt.cluster : nullptr; }
  const AgentSpec& agent_spec(const std::string& name) const;

 private:
  friend ResumePoint restore_checkpoint(ExperimentContext& ctx);
  std::optional<Checkpoint> resumed_;  ///< the ranks but 0's copy of rank 0's checkpoint
  std::size_t written_ = 0;
};

// ---------------------------------------------------------------------------
// Metric rows
// ---------------------------------------------------------------------------

MetricRow plain(const std::string& section, const std::string& subject, const std::string& metric,
                double value, std::optional<std::int64_t> n = std::nullopt,
                std::string details = {});
MetricRow lift_row(const std::string& section, const std::string& subject,
                   const std::string& metric, const stats::Lift& l,
                   std::optional<std::int64_t> rep);

}  // namespace mtf::experiments
