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
#include "metrics/user_metrics.h"
#include "results/recorder.h"
#include "sim/catalogue.h"
#include "core/cluster.h"
#include "core/policy.h"
#include "sim/scenario.h"
#include "users/population.h"
#include "users/user_model.h"

namespace mtf {

struct ByteReader;  // core/bytes.h: reads what the ranks exchange

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
  /// Sees every batch of rows before it goes to the recorder, on the calling
  /// thread, in user order within a day (so what it collects does not depend on
  /// the thread count). Only called when rows are recorded (a recorder is given
  /// or `collect` is set).
  std::function<void(const RecordBatch&)> on_batch;
  /// Build record batches for on_batch even without a recorder.
  bool collect = false;
  /// The processes to shard the users over (core/cluster.h); null: this process
  /// alone. Every rank calls run_days with the same arguments on a Simulator of
  /// the same scenario, policies and user seed. Blocks of users go to the ranks
  /// in turn (block b to rank b mod N, the same every day) and the ranks then
  /// exchange what their blocks produced and their users' states, so every rank
  /// merges every block in block order: its result, per-user totals, on_batch
  /// calls and state at the day's end are those of one process. Rows travel
  /// only to the ranks that record (a recorder) or collect; `threads` is per rank.
  /// A Simulator built with UserSharding holds only its own users' state, and
  /// the states stay where they are; otherwise every rank receives every
  /// block's users' state after each round of blocks.
  const Cluster* cluster = nullptr;
};

/// A Simulator whose users are sharded over MPI ranks (`ranks`, more than
/// one): each rank draws and holds only the users of its blocks (block b of
/// `block_users` users is rank b mod N's, as RunOptions::cluster shards the
/// work), so the population's memory divides by the ranks and no user's state
/// travels between them. run_days must then be given the same `ranks` and
/// `block_users`; save_state() gathers the whole state on rank 0. Results are
/// those of one process, as without it. Null `ranks`: every user, as usual.
struct UserSharding {
  const Cluster* ranks = nullptr;
  int block_users = RunOptions{}.block_users;
};

struct RunResult {
  std::vector<GroupSummary> groups;
  OnlineMetrics metrics{0, 0};
  std::int64_t requests = 0, sessions = 0;
  /// Sessions ended by a cap of the scenario's limits block (per group: GroupSummary).
  std::int64_t sessions_capped = 0;
  double first_request_reward = 0;  ///< mean reward of a session's first request, over all groups
  double wall_seconds = 0;
  std::vector<double> group_first_request_reward;  ///< per group
};

class Ranker;

class Simulator {
 public:
  /// `policies` has one policy per scenario group; empty: built from the groups' specs.
  /// `user_seed` (0: the scenario's seed) draws the population, the group
  /// assignment and every per-user stream; the world (catalogue, topic graph)
  /// always comes from the scenario's seed. Another user seed is another sample
  /// of users in the same world: replicates of an A/B test.
  /// `sharding`: hold only this rank's users (UserSharding).
  explicit Simulator(Scenario scenario, std::vector<PolicyPtr> policies = {}, std::uint64_t user_seed = 0,
                     UserSharding sharding = {});
  ~Simulator();

  /// Simulates all the scenario's days. `recorder` may be null (nothing written).
  /// Only on a fresh Simulator (the population's state evolves); otherwise
  /// throws std::logic_error.
  RunResult run(const RunOptions& options, Recorder* recorder);
  /// Simulates the next `days` days (continuing from days_done(); at most the
  /// scenario's days in all). The result covers these days only. Between calls
  /// policies may be replaced (set_policy): explore/train rounds.
  RunResult run_days(int days, const RunOptions& options, Recorder* recorder);
  int days_done() const { return day_; }

  /// Replaces group g's policy from the next simulated day on.
  void set_policy(int group, PolicyPtr policy);
  /// Record every shown item (the impressions table) of the flagged groups
  /// (one flag per group); needs record.impressions or a tap to be useful.
  void set_impression_groups(std::vector<bool> groups) { impression_groups_ = std::move(groups); }
  /// Accumulate per-user totals (UserTotals, metrics/user_metrics.h) from the
  /// next simulated day on, for user-level statistics; at most UserTotals::kMaxDays days.
  void track_user_totals(bool on);
  /// The discount of UserTotals::discounted_return and chained_return, in [0, 1] (default 0.95).
  void set_return_gamma(double gamma);
  double return_gamma() const { return return_gamma_; }
  /// Clears the per-user totals; day bits count from the next simulated day.
  void reset_user_totals();
  const std::vector<UserTotals>& user_totals() const { return user_totals_; }

  /// What the users carry from one simulated day to the next: every user's
  /// state and interests, the per-user totals and the day counter (the
  /// per-user streams are derived from the day, so they need no saving).
  /// restore_state on a Simulator built from the same scenario and user seed,
  /// with the same policies set, continues as this one would, to the bit.
  /// Throws std::invalid_argument for bytes that do not fit this simulator.
  /// With UserSharding both are collective in effect: save_state() gathers
  /// every rank's users and returns the whole state on rank 0 and an empty
  /// string on the others (every rank must call it); restore_state() takes
  /// the whole state on every rank and keeps the rank's own users.
  std::string save_state() const;
  void restore_state(std::string_view bytes);

  const Scenario& scenario() const { return scenario_; }
  const Catalogue& catalogue() const { return *catalogue_; }
  /// The users (with UserSharding, this rank's only: Population::shard()).
  const Population& population() const { return *population_; }
  int group_of(std::int64_t user) const { return group_[static_cast<std::size_t>(user)]; }
  /// Every user's group (group_of), indexed by user, as user-level metrics take it.
  const std::vector<std::uint8_t>& group_assignment() const { return group_; }
  const std::vector<PolicyPtr>& policies() const { return policies_; }
  /// Rows for the run database's groups table.
  std::vector<GroupRow> group_rows() const;
  RunInfo run_info(const std::string& code_version, int threads) const;

  class Stepper;

 private:
  struct BlockOut;
  struct ThreadScratch;
  struct Block;  // one block-day: dispatch, session handlers, row builders (simulator.cpp)
  void simulate_block(int day, std::int64_t begin, std::int64_t end, bool record,
                      ThreadScratch& scratch, BlockOut& out);
  /// A block's output and (unless the users are sharded) its users' states at the day's end, as one rank sends
  /// them to the others.
  void pack_block(const BlockOut& out, std::int64_t b, std::int64_t begin, std::int64_t end, std::string& shared,
                  std::string* batch) const;
  void unpack_block(BlockOut& out, std::int64_t b, std::int64_t begin, std::int64_t end, bool apply_states,
                    ByteReader& shared, ByteReader* batch);

  Scenario scenario_;
  std::unique_ptr<Catalogue> catalogue_;
  std::unique_ptr<Population> population_;
  UserModel model_;
  std::unique_ptr<Ranker> ranker_;
  std::vector<PolicyPtr> policies_;
  std::uint64_t user_seed_;
  const Cluster* shards_ = nullptr;  ///< UserSharding::ranks when sharded (more than one rank)
  int shard_block_ = 0;              ///< UserSharding::block_users
  std::vector<std::uint8_t> group_;
  std::vector<std::int64_t> group_users_;
  std::vector<bool> impression_groups_;
  std::vector<UserTotals> user_totals_;
  bool track_users_ = false;
  int totals_day0_ = 0;
  double return_gamma_ = 0.95;  ///< day of bit 0 in user_totals_
  int day_ = 0;          ///< days simulated so far
  bool stepped_ = false;  ///< a Stepper drives the users: run() is refused
};

/// Steps chosen users request by request, for actions chosen outside the
/// simulator (the Python module's vectorised environment, python/). A slot is
/// one user, simulated as a block of that one user by the very code run() uses
/// (its requests are answered by a policy that returns the action given to
/// step()); results do not depend on the block size, so a user's requests,
/// states and rewards are those of run() with a policy that would have chosen
/// the same actions. Each slot moves through the days on its own: after its
/// user's last session of a day, the slot runs the day boundary and continues
/// with the next day, without end (the per-user streams are derived from the
/// day, so every day is defined, past the scenario's days too).
///
/// Needs a fresh Simulator whose scenario records transitions (the terminal
/// state of a session is read from its transition row); the Simulator then
/// belongs to the Stepper (run() is refused). Not thread-safe.
class Simulator::Stepper {
 public:
  /// What a slot's pending request is.
  struct Request {
    std::int64_t user = 0;
    std::int32_t session = 0;  ///< the user's session index, from 0
    std::int32_t step = 0;     ///< the request's index within its session, from 0
    int day = 0;               ///< the day its session started on
    double time = 0;           ///< simulated seconds since day 0 began
  };
  /// What answering one request gave.
  struct Outcome {
    double reward = 0;  ///< Formula 2 (the run database stores it as float32)
    bool done = false;  ///< the user left the session after this request
    std::span<const float> next_state;  ///< the state after the request (kStateDim; at done, the session's last)
  };

  /// Runs each user of `users` (distinct population indices) to its first request.
  /// Throws std::invalid_argument for a bad user list, std::logic_error for a
  /// used Simulator or one whose scenario does not record transitions.
  Stepper(Simulator& sim, std::vector<std::int64_t> users);
  ~Stepper();
  Stepper(const Stepper&) = delete;
  Stepper& operator=(const Stepper&) = delete;

  std::size_t size() const { return slots_.size(); }
  /// The state of slot k's pending request (kStateDim values).
  std::span<const float> state(std::size_t k) const;
  Request request(std::size_t k) const;
  /// Answers slot k's pending request with `action` (action_dim values, in
  /// [-1, 1]; the caller checks them) and runs the user to its next request: the
  /// next one of the session, or after `done` the first of the user's next session.
  /// The outcome's next_state stays valid until the slot's next step.
  Outcome step(std::size_t k, std::span<const float> action);

 private:
  struct Slot;
  void start_day(Slot& slot, int day);
  Simulator& sim_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

/// Group of user u: a seeded hash of (seed, u) against the groups' shares, so
/// membership does not depend on population size or order.
int assign_group(std::uint64_t seed, std::int64_t user, const std::vector<GroupSpec>& groups);

/// The project version and the git revision this binary was built from, read
/// at build time ("-modified" when tracked files differed from that commit,
/// "unknown" outside a git checkout; cmake/git_revision.cmake).
std::string code_version();

}  // namespace mtf
