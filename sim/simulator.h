// The simulator: the day loop over a population split into groups (arms), each
// group with its own policy. Within a day, users are independent given the
// policies, so blocks of users are simulated in parallel, each block by its own
// event kernel (sim/event_queue.h); every user draws from its own streams
// (seed, purpose, user, day), and blocks are merged and written in block order,
// so a run's results are identical for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "metrics/online_metrics.h"
#include "results/recorder.h"
#include "sim/catalogue.h"
#include "sim/policy.h"
#include "sim/scenario.h"
#include "users/population.h"
#include "users/user_model.h"

namespace mtf {

struct Progress {
  int day = 0, days = 0;
  std::int64_t users_done = 0;  ///< in the current day
  std::int64_t users = 0;
  std::int64_t requests = 0;    ///< so far in the run
  double wall_seconds = 0;
};

struct RunOptions {
  int threads = 1;
  int block_users = 256;  ///< users per work unit; results do not depend on it
  std::function<void(const Progress&)> on_progress;  ///< called on the calling thread
};

struct RunResult {
  std::vector<GroupSummary> groups;
  OnlineMetrics metrics{0, 0};
  std::int64_t requests = 0, sessions = 0;
  double first_request_reward = 0;  ///< mean reward of a session's first request, over all groups
  double wall_seconds = 0;
  std::vector<double> group_first_request_reward;  ///< per group
};

class Ranker;

class Simulator {
 public:
  /// `policies` has one policy per scenario group; empty: built from the groups' specs.
  explicit Simulator(Scenario scenario, std::vector<PolicyPtr> policies = {});
  ~Simulator();

  /// Simulates the scenario's days. `recorder` may be null (nothing written).
  /// Can be called once per Simulator (the population's state evolves); a
  /// second call throws std::logic_error.
  RunResult run(const RunOptions& options, Recorder* recorder);

  const Scenario& scenario() const { return scenario_; }
  const Catalogue& catalogue() const { return *catalogue_; }
  const Population& population() const { return *population_; }
  int group_of(std::int64_t user) const { return group_[static_cast<std::size_t>(user)]; }
  const std::vector<PolicyPtr>& policies() const { return policies_; }
  /// Rows for the run database's groups table.
  std::vector<GroupRow> group_rows() const;
  RunInfo run_info(const std::string& code_version, int threads) const;

 private:
  struct BlockOut;
  struct ThreadScratch;
  void simulate_block(int day, std::int64_t begin, std::int64_t end, bool record,
                      ThreadScratch& scratch, BlockOut& out);

  Scenario scenario_;
  std::unique_ptr<Catalogue> catalogue_;
  std::unique_ptr<Population> population_;
  UserModel model_;
  std::unique_ptr<Ranker> ranker_;
  std::vector<PolicyPtr> policies_;
  std::vector<std::uint8_t> group_;
  std::vector<std::int64_t> group_users_;
  bool ran_ = false;
};

/// Group of user u: a seeded hash of (seed, u) against the groups' shares, so
/// membership does not depend on population size or order.
int assign_group(std::uint64_t seed, std::int64_t user, const std::vector<GroupSpec>& groups);

/// The project version and git revision this binary was built from.
std::string code_version();

}  // namespace mtf
