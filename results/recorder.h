// The run database: one SQLite file per run (the only module that touches SQLite).
//
// Schema (version kSchemaVersion, stored in PRAGMA user_version) is documented in
// README.md ("Database schema"). Simulation threads build RecordBatch objects;
// Recorder::submit hands them to one writer thread that inserts them with
// prepared statements inside large transactions, in submission order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/tasks.h"
#include "core/transitions.h"

namespace mtf {

inline constexpr int kSchemaVersion = 3;
/// The oldest schema the readers accept (version 2 has no table agents).
inline constexpr int kOldestReadableSchemaVersion = 2;

/// Thrown for database problems (cannot open, wrong schema version, I/O errors).
class RecordError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RunInfo {
  std::string scenario_name;
  std::string scenario_json;  ///< the scenario as run (defaults filled in)
  std::uint64_t seed = 0;
  std::string code_version;   ///< project version + git revision when known
  int state_dim = 0;
  int action_dim = 0;
  std::vector<std::string> state_features;  ///< names, state_dim of them
  std::vector<std::string> action_names;    ///< names, action_dim of them
  int threads = 1;            ///< informational only; never affects results
};

struct GroupRow {
  int group = 0;
  std::string name;
  double share = 0;
  std::string policy;  ///< policy name
  std::string policy_json;
  std::int64_t users = 0;
};

struct SessionRow {
  std::int64_t user = 0;
  std::int32_t session = 0;  ///< per-user session index, from 0
  std::int32_t group = 0;
  std::int32_t day = 0;      ///< day the session started on, from 0
  double start_time = 0;     ///< simulated seconds since the run started
  double end_time = 0;
  std::int32_t requests = 0;
  double reward = 0;         ///< sum of rewards (undiscounted)
  BehaviourCounts counts;    ///< summed over the session
};

/// Online metrics of one user on one day (only days the user was active).
struct UserDayRow {
  std::int64_t user = 0;
  std::int32_t day = 0;
  std::int32_t group = 0;
  std::int32_t segment = 0;
  std::int32_t sessions = 0;
  std::int32_t requests = 0;
  double reward = 0;
  BehaviourCounts counts;  ///< summed over the day's sessions
};

/// One shown item of one request (table `impressions`): what the weighted GAUC
/// of IntegratedRL-MTF section 4.3.1 needs. Written only for groups that ask for it.
struct ImpressionRow {
  std::int64_t user = 0;
  std::int32_t session = 0, step = 0, group = 0;
  std::int32_t position = 0;   ///< rank in the shown list, from 0
  std::int32_t item = 0;
  bool valid = false;          ///< label: watched more than 10 s
  float reward = 0;            ///< Formula 2 over this item's behaviours alone
  std::array<float, kNumTasks> pred{};  ///< the MTL predictions the ranker fused (core/tasks.h order)
};

/// One figure of an experiment (table `metrics`): an offline estimate, an A/B
/// arm's lift, an exploration group's cost, a training figure...
struct MetricRow {
  std::string section;   ///< "offline", "ab", "ab_summary", "exploration", "online_learning", "training", ...
  std::string subject;   ///< the policy, agent or group
  std::string metric;
  double value = 0;
  std::optional<double> ci_low, ci_high, p_value;
  std::optional<std::int64_t> rep;  ///< replicate (A/B seed index, learner round); nullopt: aggregate
  std::optional<std::int64_t> n;    ///< sample size behind the figure
  std::string details;   ///< JSON object or empty
};

/// A trained agent kept with the run (table agents): its agent file's bytes
/// (agents/agent.h, Agent::to_bytes), so that it can be evaluated, deployed in a
/// scenario or trained further (`RUN.sqlite:NAME` wherever an agent file goes).
struct AgentRow {
  std::string name;             ///< the experiment's name for it
  std::string type;             ///< the agent type (make_agent's name)
  std::int64_t steps = 0;       ///< gradient steps trained
  /// Where it came from: "dataset NAME" (trained by the experiment) or the
  /// agent file or RUN.sqlite:NAME a group deployed it from.
  std::string source;
  std::string hyperparameters;  ///< JSON, defaults filled in
  std::string data;             ///< the agent file's bytes (empty when read without them)
  std::int64_t bytes = 0;       ///< data's size
};

/// A unit of work for the writer: rows produced by one block of users on one day.
/// Transitions may come as rows, as columns, or both (rows are written first).
struct RecordBatch {
  std::vector<SessionRow> sessions;
  std::vector<TransitionRow> transitions;
  TransitionColumns transition_columns;
  std::vector<UserDayRow> user_days;
  std::vector<ImpressionRow> impressions;
};

/// One row of the end-of-run summary table (per group), stored in table `summary`.
struct SummaryRow {
  int group = 0;
  std::string name;
  std::string metric;
  double value = 0;
};

/// How the run database is opened and written. The connection settings (WAL,
/// busy timeout, page size, cache, schema version) live here and nowhere else.
struct RecorderOptions {
  /// Replace an existing file at the path. Only a run database is replaced
  /// unless `replace_any_file` is set (mtfsim's --force).
  bool overwrite = true;
  std::size_t batch_rows = 20000;     ///< rows per transaction
  std::size_t max_queued_batches = 8; ///< submit() blocks beyond this (bounded memory)
  bool index_transitions = false;     ///< finish() indexes transitions(user, session, step)
  /// Write-ahead log while the run is written, so readers never block the writer.
  /// false: a rollback journal (about 20% less writer CPU, since appended pages
  /// are written once instead of to the WAL and again at checkpoints; a reader
  /// then briefly delays commits). A finished file is in DELETE mode either way.
  bool wal = true;
  int busy_timeout_ms = 5000;         ///< wait this long for a lock held by a reader
  int page_size = 65536;              ///< bytes (512..65536, a power of 2); set when the file is created
  int cache_mib = 64;                 ///< page cache of the connection, MiB
  /// Write the run to `<path>.partial` (partial_path) and rename it onto the
  /// path in finish(): a run that fails or is killed never touches an earlier
  /// file at the path, and the file at the path is always a finished run.
  /// false: written in place.
  bool atomic = true;
  /// With `overwrite`: replace an existing file at the path even when it is not
  /// an mtfsim run database. Off: such a file is refused (RecordError).
  bool replace_any_file = false;
  /// Continue the unfinished run in `<path>.partial` from its last checkpoint
  /// (resumed()); the run's scenario and seed (RunInfo) must be the ones it
  /// was started with. A partial file without a checkpoint starts again.
  bool resume = false;
  /// Write nothing: every row, checkpoint and finish() is accepted and dropped,
  /// and no file is touched (the recorder of an MPI rank other than 0, whose
  /// rows rank 0 writes). file() is the path rank 0 writes.
  bool discard = false;
};

/// What an experiment saves at the end of a stage, so that a killed run can
/// continue from there (Recorder::checkpoint, RecorderOptions::resume). Stored in
/// tables resume_state and resume_blobs of the unfinished file; finish() drops
/// them, so a finished run has none.
struct Checkpoint {
  std::string stage;              ///< the last completed stage, as the engine names it
  std::string state;              ///< the engine's own state, JSON text
  std::int64_t metrics_rows = 0;  ///< rows of table metrics written by then; later ones are dropped on resume
  /// Named binary states (agents). A checkpoint replaces the blobs it names
  /// and keeps the others, but for those of drop_large.
  std::map<std::string, std::string> blobs;
  /// put_large keys whose blobs (every piece) the file no longer needs from
  /// this checkpoint on: deleted from it (a users' state of a finished stage).
  std::vector<std::string> drop_large;

  /// Pieces of at most this many bytes (SQLite refuses a blob over 10^9 bytes
  /// by default; a paper-sized population's state is several GB).
  static constexpr std::size_t kBlobPiece = std::size_t{512} << 20;
  /// Stores `bytes` under `key` in pieces (blobs KEY#pieces, the count as
  /// text, and KEY#0, KEY#1, ...), so that a state of any size fits.
  void put_large(const std::string& key, std::string bytes, std::size_t piece = kBlobPiece);
  /// What put_large stored under `key` (or, from an earlier version, the one
  /// blob `key`); throws std::invalid_argument naming a missing piece. A
  /// view of the blob itself when it is one piece, else of `joined`, which
  /// receives the pieces joined (no copy of a state that fits one piece).
  std::string_view large(const std::string& key, std::string& joined) const;
  std::string large(const std::string& key) const {
    std::string joined;
    return std::string(large(key, joined));
  }
  /// Drops what put_large stored under `key`.
  void erase_large(const std::string& key);
};

/// Where a run bound for `target` is written until it finishes: `<target>.partial`.
std::filesystem::path partial_path(const std::filesystem::path& target);
/// True when `path` is an SQLite file with a run database's application id.
bool is_run_database(const std::filesystem::path& path);

/// Writes one run database. Not copyable. Errors on the writer thread are
/// rethrown from the next submit() or from finish().
class Recorder {
 public:
  Recorder(const std::filesystem::path& path, const RunInfo& info, const RecorderOptions& opts = {});
  ~Recorder();  ///< finishes if finish() was not called; never throws
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  void write_groups(const std::vector<GroupRow>& groups);
  /// Queues rows for the `metrics` table (experiments).
  void write_metrics(const std::vector<MetricRow>& rows);
  /// Queues rows for the `agents` table (the trained agents an experiment keeps).
  void write_agents(const std::vector<AgentRow>& rows);
  /// Queues a batch for the writer thread (in order). Blocks while the queue is full.
  void submit(RecordBatch&& batch);
  /// Queues a checkpoint: everything submitted before it is committed with it,
  /// in one transaction, so a resumed run starts from a consistent file.
  /// Rows of tables other than metrics must all come before the checkpoint.
  /// With `wait`, returns once it is committed (a kill after that resumes from it).
  void checkpoint(Checkpoint c, bool wait = false);
  /// The checkpoint this recorder resumed from (RecorderOptions::resume), with
  /// every blob; nullopt for a fresh run.
  const std::optional<Checkpoint>& resumed() const;
  /// The file being written (`<path>.partial` when atomic).
  const std::filesystem::path& file() const;
  /// Drains the queue, writes the summary and run end time, creates indexes,
  /// drops the checkpoint tables, closes, and (atomic) renames the file onto
  /// the path.
  void finish(const std::vector<SummaryRow>& summary, double wall_seconds);

  /// Rows written so far (transitions), for progress and benchmarks.
  std::int64_t transitions_written() const;
  /// CPU seconds the writer thread has used so far (for benchmarks: the writer's
  /// cost on one core, whatever else runs on the machine).
  double writer_cpu_seconds() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Reading back (tests, agents' datasets, reports).
struct RunContents {
  int schema_version = 0;
  RunInfo info;
  std::string started_at;   ///< UTC, ISO 8601 ("2024-05-01T12:00:00Z")
  std::string finished_at;  ///< empty when the run did not finish (no finish() call)
  std::optional<double> wall_seconds;  ///< as passed to finish(); nullopt when unfinished
  std::vector<GroupRow> groups;
  std::vector<SessionRow> sessions;
  std::vector<TransitionRow> transitions;
  std::vector<UserDayRow> user_days;
  std::vector<SummaryRow> summary;
  std::vector<ImpressionRow> impressions;
  std::vector<MetricRow> metrics;
  std::vector<AgentRow> agents;  ///< the agents it keeps, without their bytes (read_agents has them)
};

/// Reads a whole run database (for small runs). Throws RecordError with the path and
/// the reason (not a run database, schema version newer/older than this build,
/// UnfinishedRunError for a run that did not finish unless allow_partial...).
/// with_rows = false skips the per-row tables (sessions, user_days, impressions):
/// run info, groups, summary and metrics only (what reports need).
RunContents read_run(const std::filesystem::path& path, bool with_transitions = true,
                     bool with_rows = true, bool allow_partial = false);

/// Readers refuse a run that did not finish (run.finished_at NULL: killed,
/// failed, or still running) with this error naming the file, how far it got
/// and the way on, unless they are asked to read it anyway (allow_partial).
class UnfinishedRunError : public RecordError {
 public:
  using RecordError::RecordError;
};

/// The transitions of a run database as columns, in the order they were
/// recorded (what an experiment collected in memory; a baseline a row does not
/// have is 0, and bounds are stored only for the rows that have them). Refuses
/// an unfinished run unless allow_partial.
TransitionColumns read_transition_columns(const std::filesystem::path& path, bool allow_partial = false);
/// One shard of them: the transitions of users u with u mod `shards` == `shard`,
/// in recorded order (a rank's data in data-parallel training; whole sessions).
TransitionColumns read_transition_columns(const std::filesystem::path& path, bool allow_partial, int shards,
                                          int shard);
/// The same (shard) read in chunks of at most chunk_rows transitions, for data
/// larger than memory: each chunk is handed to `take` as columns of their own
/// (s' and bounds slots numbered within the chunk; the last row of a chunk keeps its s'),
/// then cleared for the next. Appended in order, the chunks hold the same
/// values as read_transition_columns. chunk_rows >= 1.
void read_transition_chunks(const std::filesystem::path& path, bool allow_partial, int shards, int shard,
                            std::size_t chunk_rows, const std::function<void(TransitionColumns&)>& take);
/// The agents a run database keeps (table agents; none in a plain run or a
/// schema 2 file), in the order written; with_data = false leaves data empty.
/// Refuses an unfinished run unless allow_partial.
std::vector<AgentRow> read_agents(const std::filesystem::path& path, bool with_data = true,
                                  bool allow_partial = false);
/// The impressions of a run database, in the order they were recorded.
std::vector<ImpressionRow> read_impressions(const std::filesystem::path& path, bool allow_partial = false);

/// Figures of one recorder benchmark (see bench_recorder).
struct RecorderBenchResult {
  std::int64_t transitions = 0;
  double insert_seconds = 0;      ///< wall time from the first submit() until the queue drained
  double finish_seconds = 0;      ///< wall time of finish(): indexes, summary, checkpoint
  double writer_cpu_seconds = 0;  ///< CPU time of the writer thread during the inserts
  /// transitions / writer_cpu_seconds: what one core sustains, whatever else runs.
  double rows_per_cpu_second = 0;
  /// transitions / (insert_seconds + finish_seconds): end to end, wall clock.
  double rows_per_second = 0;
};

/// Writes `transitions` synthetic transitions (state_dim floats of state and next
/// state, action_dim of action, baseline and bounds filled, one session row per 8
/// transitions and one user-day row per 16) to `file` through a Recorder with
/// `opts`, and times it. The producer copies rows from a template, so the writer
/// thread is the bottleneck being measured.
RecorderBenchResult bench_recorder(const std::filesystem::path& file, std::int64_t transitions,
                                   int state_dim = 32, int action_dim = 10,
                                   const RecorderOptions& opts = {});
/// bench_recorder(...).rows_per_second: end-to-end transitions per second.
double bench_recorder_rows_per_second(const std::filesystem::path& file, std::int64_t transitions,
                                      int state_dim = 32, int action_dim = 10);

}  // namespace mtf
