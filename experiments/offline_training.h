// Training one agent on a run database's transitions, outside an experiment
// (`mtfsim train`): a new agent of a type with hyperparameters, or an agent
// file / kept agent trained further, with its learning curve.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/agent.h"
#include "agents/curves.h"
#include "agents/dataset.h"

namespace mtf::experiments {

struct OfflineTrainingSpec {
  std::filesystem::path run;        ///< the run database whose transitions are the dataset
  std::vector<std::string> groups;  ///< its groups to train on (names); empty: every group
  std::string type;                 ///< a new agent of this type (agents::agent_names()) ...
  nlohmann::json hyperparameters = nlohmann::json::object();  ///< ... with these overrides
  std::string from;                 ///< ... or this agent (file or RUN.sqlite:NAME), trained further
  std::int64_t steps = 0;           ///< gradient steps to train, >= 1
  /// How the transitions chain into episodes (the papers' session MDP, or a
  /// user's sessions chained; agents::Formulation).
  agents::Formulation formulation = agents::Formulation::kSession;
  /// > 0: discount by elapsed time, gamma^(dt / discount_seconds) per
  /// transition (agents::Dataset::discount_by_elapsed_time); 0: per request.
  double discount_seconds = 0;
  std::uint64_t seed = 0;           ///< the new agent's seed (its streams); unused with `from`
  int curve_points = 50;            ///< curve points over the training (agents::is_curve_step)
  /// Called after every step with the progress of this training.
  std::function<void(const agents::TrainProgress&)> progress;
  /// Data-parallel training over these ranks (Agent::set_data_parallel): rank r
  /// reads and trains on the transitions of users u with u mod N == r; every
  /// rank ends with the same agent. The curve is measured on each rank's own
  /// shard (rank 0's is the one to report). Null: this process alone.
  const Cluster* cluster = nullptr;
  /// Out of core: when set, the transitions are read from the database in
  /// chunks of chunk_rows into column files in this new directory
  /// (core/column_file.h), which the dataset maps instead of holding them in
  /// memory; the directory is removed after training. Same training bits as
  /// in memory.
  std::filesystem::path out_of_core;
  std::size_t chunk_rows = 100'000;
};

struct OfflineTrainingResult {
  std::unique_ptr<agents::Agent> agent;
  std::vector<agents::CurvePoint> curve;  ///< at the curve steps, in order
  std::int64_t transitions = 0;           ///< in the dataset (every rank's shard together)
  double seconds = 0;                     ///< training wall time
};

/// Loads the dataset (the run must have finished), creates or loads the agent
/// and trains it. Throws std::invalid_argument for a bad spec (unknown type,
/// hyperparameter or group; no transitions), RecordError for the database,
/// AgentFileError for `from`, TrainingDiverged when a loss stops being finite.
OfflineTrainingResult train_offline(const OfflineTrainingSpec& spec);

/// The curve as a markdown table at up to `rows` log-spaced points (the first
/// and last included): step, each loss, mean Q, outside bounds, baseline distance.
std::string format_curve(const std::vector<agents::CurvePoint>& curve, int rows = 9);
/// The whole curve as CSV (one row per point; the same columns).
std::string curve_csv(const std::vector<agents::CurvePoint>& curve);

}  // namespace mtf::experiments
