// A plain simulation of a scenario's groups (a scenario without an experiment
// block): the groups' policies (trained agents loaded, any of them replaced by
// the caller's), the run database, the summary rows and the lifts of every
// group over the first. What `mtfsim run` does and the Python module's
// mtfsim.run() (python/) does, so both give the same numbers.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <vector>

#include "core/cluster.h"
#include "core/policy.h"
#include "metrics/user_metrics.h"
#include "results/recorder.h"
#include "sim/scenario.h"
#include "sim/simulator.h"

namespace mtf::experiments {

struct SimulationOptions {
  int threads = 1;               ///< never changes the results
  std::filesystem::path out;     ///< the run database to write; empty: none
  bool replace_any_file = false; ///< RecorderOptions::replace_any_file (mtfsim run --force)
  /// Replaces the policies of these groups (by index) for this run; the run
  /// database's groups table names the replacement (Policy::name).
  std::map<int, PolicyPtr> policies;
  std::function<void(const Progress&)> on_progress;  ///< on the calling thread
  /// Shards the users over these ranks (RunOptions::cluster); every rank calls
  /// run_simulation with the same scenario and options and gets the same
  /// result; only rank 0 writes the run database. Null: this process alone.
  const Cluster* cluster = nullptr;
};

struct SimulationResult {
  RunResult run;
  std::vector<SummaryRow> summary;  ///< as stored in the run database's table summary
  /// Every group's lift over group 0 (the control), over users; computed when
  /// there are two groups or more and the run is at most UserTotals::kMaxDays days.
  bool has_lifts = false;
  std::vector<GroupLift> lifts;
};

/// Simulates `sc`'s groups for its days (sc.seed is the master seed), writing the
/// run database when options.out is set (as FILE.partial, renamed when finished).
/// Throws ScenarioError for an index in options.policies that is not a group, or a
/// replacement of the wrong action dimension; RecordError for the database.
SimulationResult run_simulation(const Scenario& sc, const SimulationOptions& options);

}  // namespace mtf::experiments
