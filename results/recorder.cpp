// The run database's writer: Recorder, its writer thread that turns RecordBatch
// objects into rows, and finish(). The SQLite wrapper is results/sqlite_db.h, the
// schema results/run_schema.h, reading back results/run_reader.cpp and the
// benchmark results/recorder_bench.cpp.
//
// How the file is written, and why:
// - The connection is opened in multi-thread mode (no SQLite mutexes): it is used
//   by one thread at a time (the constructor, then the writer thread, then the
//   thread that calls finish(), each handing over through a join or a queue).
// - journal_mode=WAL while the run is written (RecorderOptions::wal), so
//   `sqlite3 run.sqlite` can watch progress without blocking the writer;
//   finish() checkpoints and switches back to DELETE so the finished result is
//   one self-contained file (readers then need no -wal/-shm files, and a
//   read-only open works anywhere). WAL writes every page twice (log, then
//   checkpoint): wal = false saves about 20% of the writer's CPU.
// - synchronous=OFF while bulk loading: a run interrupted by a crash is useless
//   whatever the durability of its last rows (it has to be re-run, the scenario
//   and seed reproduce it exactly), and OFF saves an fsync on every WAL
//   checkpoint. finish() sets NORMAL before the final checkpoint, which then
//   syncs once, so a finished file is durable.
// - No index exists while rows are inserted: rowid tables appended in rowid
//   order fill their pages completely, and the indexes are built once, sorted,
//   in finish().
// - 64 KiB pages: a transition row is about 450 bytes; large pages mean fewer
//   page allocations and b-tree balancing steps per row (measured: 16 KiB pages
//   cost about 15% more writer CPU, 4 KiB pages about 80% more).
// - Transitions go in through a 16-row INSERT: one statement execution per 16
//   rows instead of one per row (about 15% less writer CPU).
// - Float vectors are bound as little-endian float32 blobs straight from the
//   row's memory (SQLITE_STATIC): no copy. Statements are reset after every row;
//   their bindings are cleared once per batch, before the batch's memory (which
//   SQLITE_STATIC bindings point into) is released, since every row rebinds every
//   parameter anyway.
#include "results/recorder.h"

#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <cassert>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <future>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>

#include "results/run_schema.h"
#include "results/sqlite_db.h"

namespace mtf {
namespace {

namespace fs = std::filesystem;
using namespace sqlite;
using namespace run_schema;

std::string utc_now_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::string names_to_json(const std::vector<std::string>& names) {
  return nlohmann::json(names).dump();
}

// ---------------------------------------------------------------------------
// Statements of the writer
// ---------------------------------------------------------------------------

constexpr const char* kInsertRun =
    "INSERT INTO run(scenario_name, scenario_json, seed, code_version, schema_version, "
    "state_dim, action_dim, state_features, action_names, threads, started_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr const char* kFinishRun = "UPDATE run SET finished_at = ?1, wall_seconds = ?2";
constexpr const char* kInsertGroup =
    "INSERT INTO groups(grp, name, share, policy, policy_json, users) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kInsertSession =
    "INSERT INTO sessions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
    "?15, ?16, ?17, ?18)";
constexpr const char* kInsertTransition =
    "INSERT INTO transitions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
    "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)";
/// Binds the ten BehaviourCounts columns starting at parameter `first`.
void bind_counts(Statement& st, int first, const BehaviourCounts& c) {
  st.bind(first + 0, c.shown);
  st.bind(first + 1, c.plays);
  st.bind(first + 2, c.valid);
  st.bind(first + 3, c.finishes);
  st.bind(first + 4, c.likes);
  st.bind(first + 5, c.shares);
  st.bind(first + 6, c.comments);
  st.bind(first + 7, c.skips);
  st.bind(first + 8, static_cast<double>(c.watch_seconds));
  st.bind(first + 9, static_cast<double>(c.dwell_seconds));
}

constexpr int kTransitionColumns = 24;
/// Rows per multi-row INSERT: one statement execution per block saves the
/// per-statement work of the VDBE program (about 15% of the writer's time).
constexpr std::size_t kTransitionsPerInsert = 16;

/// "INSERT INTO transitions VALUES (?,...),(?,...),..." for `rows` rows. Built
/// from constants only (placeholders), never from values.
std::string insert_transitions_sql(std::size_t rows) {
  std::string sql = "INSERT INTO transitions VALUES ";
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r ? ",(" : "(";
    for (int c = 0; c < kTransitionColumns; ++c) sql += c ? ",?" : "?";
    sql += ")";
  }
  return sql;
}

/// The vectors of one transition (empty spans bind as NULL where allowed).
struct TransitionVectors {
  std::span<const float> state, action, next_state, baseline, lower, upper;
};

/// Binds one transition's columns to parameters base+1 .. base+kTransitionColumns.
void bind_transition(Statement& st, int base, std::int64_t user, std::int32_t session, std::int32_t step,
                     std::int32_t group, double time, float reward, bool done, const BehaviourCounts& counts,
                     const std::optional<double>& log_density, const TransitionVectors& v) {
  st.bind(base + 1, user);
  st.bind(base + 2, session);
  st.bind(base + 3, step);
  st.bind(base + 4, group);
  st.bind(base + 5, time);
  st.bind_floats(base + 6, v.state, false);
  st.bind_floats(base + 7, v.action, false);
  st.bind_floats(base + 8, v.next_state, false);
  st.bind(base + 9, static_cast<double>(reward));
  st.bind(base + 10, done ? 1 : 0);
  bind_counts(st, base + 11, counts);
  st.bind_floats(base + 21, v.baseline, true);
  st.bind_floats(base + 22, v.lower, true);
  st.bind_floats(base + 23, v.upper, true);
  st.bind(base + 24, log_density);
}

/// A transition given as a row.
void bind_transition(Statement& st, int base, const TransitionRow& t) {
  bind_transition(st, base, t.user, t.session, t.step, t.group, t.time, t.reward, t.done, t.counts,
                  t.log_density, {t.state, t.action, t.next_state, t.baseline, t.lower, t.upper});
}

/// Row i of columnar transitions; baseline and bounds bind as NULL where the flags say unknown.
void bind_transition(Statement& st, int base, const TransitionColumns& c, std::size_t i) {
  const TransitionColumns::Row& t = c.rows[i];
  const auto S = static_cast<std::size_t>(c.state_dim), A = static_cast<std::size_t>(c.action_dim);
  const auto slice = [i](const std::vector<float>& v, std::size_t n) {
    return std::span<const float>(v.data() + i * n, n);
  };
  const std::span<const float> none;
  bind_transition(st, base, t.user, t.session, t.step, t.group, t.time, t.reward, t.done, t.counts,
                  t.has_log_density() ? std::optional<double>(t.log_density) : std::nullopt,
                  {slice(c.state, S), slice(c.action, A), c.next_state_of(i),
                   t.has_baseline ? slice(c.baseline, A) : none, c.lower_of(i), c.upper_of(i)});
}

constexpr const char* kInsertUserDay =
    "INSERT INTO user_days VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
    "?15, ?16, ?17)";
constexpr const char* kInsertImpression =
    "INSERT INTO impressions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* kInsertMetric =
    "INSERT INTO metrics VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr const char* kInsertAgent = "INSERT INTO agents VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
// Checkpoint tables: only in unfinished files (created by the first
// checkpoint, dropped by finish()).
constexpr const char* kCheckpointSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS resume_state (
  stage TEXT NOT NULL, metrics_rows INTEGER NOT NULL, state TEXT NOT NULL, table_rows TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resume_blobs (name TEXT PRIMARY KEY, data BLOB NOT NULL);
)sql";
constexpr const char* kInsertCheckpoint =
    "INSERT INTO resume_state(stage, metrics_rows, state, table_rows) VALUES (?1, ?2, ?3, ?4)";
/// The tables a run appends rows to: a resumed run drops the rows written
/// after its checkpoint (rowids grow by one per row appended).
constexpr const char* kRowTables[] = {"groups",      "sessions", "transitions", "user_days",
                                      "impressions", "metrics",  "agents"};
/// A blob's row with its size; its bytes are written through a Blob (sqlite_db.h).
constexpr const char* kInsertBlob = "INSERT OR REPLACE INTO resume_blobs(name, data) VALUES (?1, zeroblob(?2))";
constexpr const char* kInsertSummary =
    "INSERT INTO summary(grp, name, metric, value) VALUES (?1, ?2, ?3, ?4)";

void remove_database_files(const fs::path& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::path p = path;
    p += suffix;
    std::error_code ec;
    fs::remove(p, ec);
    if (ec) {
      throw RecordError(p.string() + ": cannot remove the existing file (" + ec.message() +
                        "): delete it or choose another output path");
    }
  }
}

bool table_exists(Database& db, const char* name) {
  Statement st(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
  st.bind(1, std::string_view(name));
  return st.step();
}

/// The last checkpoint of an unfinished file, with every blob; nullopt if none.
std::optional<Checkpoint> read_checkpoint(Database& db) {
  if (!table_exists(db, "resume_state")) return std::nullopt;
  Checkpoint c;
  {
    Statement st(db, "SELECT stage, metrics_rows, state FROM resume_state");
    if (!st.step()) return std::nullopt;
    c.stage = st.text(0);
    c.metrics_rows = st.int64(1);
    c.state = st.text(2);
  }
  // Each blob read in pieces straight into its string (a column read would
  // first assemble it in SQLite's memory: a users' state twice).
  Statement st(db, "SELECT name, rowid FROM resume_blobs ORDER BY name");
  while (st.step()) Blob(db, "resume_blobs", "data", st.int64(1), /*writable=*/false).read_all(c.blobs[st.text(0)]);
  return c;
}

}  // namespace

fs::path partial_path(const fs::path& target) {
  fs::path p = target;
  p += ".partial";
  return p;
}

namespace {

/// Refuses to replace `target` when it is not a run database (unless allowed).
void check_replaceable(const fs::path& target, const RecorderOptions& opts) {
  std::error_code ec;
  if (!fs::exists(target, ec)) return;
  if (!opts.overwrite) {
    throw RecordError(target.string() +
                      ": the file already exists: choose another output path or allow "
                      "overwriting");
  }
  if (fs::is_directory(target, ec))
    throw RecordError(target.string() + ": is a directory: choose a file path for the run database");
  if (!opts.replace_any_file && !is_run_database(target)) {
    throw RecordError(target.string() +
                      ": the file exists and is not an mtfsim run database, so it is not replaced: "
                      "choose another output path, or pass --force to replace it");
  }
}

/// Checks that the unfinished file `file` is the run `info` describes, drops
/// the metric rows written after its last checkpoint, and returns that
/// checkpoint (nullopt: none, the run starts again).
std::optional<Checkpoint> open_for_resume(Database& db, const fs::path& file, const RunInfo& info) {
  std::int64_t app_id = 0, version = 0;
  try {
    app_id = pragma_int(db, "PRAGMA application_id");
    version = pragma_int(db, "PRAGMA user_version");
  } catch (const RecordError&) {
    app_id = 0;
  }
  if (app_id != kApplicationId || version != kSchemaVersion)
    throw RecordError(file.string() + ": cannot resume: not a run database of this mtfsim version; "
                      "remove it, or run again without --resume");
  std::string scenario_json, finished;
  std::int64_t seed = 0;
  {
    Statement st(db, "SELECT scenario_json, seed, finished_at FROM run");
    if (!st.step()) return std::nullopt;
    scenario_json = st.text(0);
    seed = st.int64(1);
    finished = st.is_null(2) ? std::string() : st.text(2);
  }
  if (!finished.empty())
    throw RecordError(file.string() + ": cannot resume: that run finished (at " + finished + ")");
  if (scenario_json != info.scenario_json || static_cast<std::uint64_t>(seed) != info.seed)
    throw RecordError(file.string() + ": cannot resume: it was started from another scenario or seed (" +
                      std::string(static_cast<std::uint64_t>(seed) != info.seed ? "seed " + std::to_string(static_cast<std::uint64_t>(seed)) : "the scenario differs") +
                      "); run it as it was started, or run again without --resume (with --force to discard it)");
  std::optional<Checkpoint> cp = read_checkpoint(db);
  if (!cp) return std::nullopt;
  nlohmann::json rows;
  {
    Statement st(db, "SELECT table_rows FROM resume_state");
    if (st.step()) rows = nlohmann::json::parse(st.text(0), nullptr, /*allow_exceptions=*/false);
  }
  Transaction txn(db);
  for (const char* table : kRowTables) {
    if (!rows.is_object() || !rows.contains(table) || !rows[table].is_number_integer())
      throw RecordError(file.string() + ": cannot resume: its checkpoint does not say how many rows of " + table +
                        " it holds (damaged file); run again without --resume");
    const std::string sql = std::string("DELETE FROM ") + table + " WHERE rowid > ?1";
    Statement del(db, sql.c_str());
    del.bind(1, rows[table].get<std::int64_t>());
    del.run();
  }
  txn.commit();
  return cp;
}

}  // namespace

// ---------------------------------------------------------------------------
// Recorder
// ---------------------------------------------------------------------------

struct Recorder::Impl {
  /// A job that only commits and then signals (Recorder::checkpoint's wait).
  struct Barrier {
    std::shared_ptr<std::promise<void>> done;
  };
  using Job = std::variant<RecordBatch, std::vector<GroupRow>, std::vector<MetricRow>,
                           std::vector<AgentRow>, Checkpoint, Barrier>;

  RecorderOptions opts;
  fs::path target;  // where the finished run goes
  fs::path file;    // what is written (target, or its .partial when atomic)
  std::optional<Checkpoint> resumed;
  bool commit_now = false;  // writer thread: a checkpoint asks for a commit
  std::chrono::steady_clock::time_point last_trim{};  // writer thread: the heap last trimmed
  int state_dim = 0, action_dim = 0;
  std::optional<Database> db;
  std::optional<Statement> ins_group, ins_session, ins_transition, ins_transitions_block,
      ins_user_day, ins_impression, ins_metric, ins_agent;

  std::mutex mutex;
  std::condition_variable not_empty, not_full;
  std::deque<Job> queue;
  bool stopping = false;
  bool closed = false;  // finish() ran (or the destructor closed the file)
  bool discard = false;  // RecorderOptions::discard: nothing is written
  std::exception_ptr error;
  std::thread writer;

  std::atomic<std::int64_t> transitions_written{0};
  std::atomic<double> writer_cpu{0.0};
  std::int64_t batches_written = 0;  // writer thread only

  // Writer thread state: the open transaction and its row count.
  std::optional<Transaction> txn;
  std::size_t rows_in_txn = 0;

  void count_row() { count_rows(1); }
  void count_rows(std::size_t n) {
    rows_in_txn += n;
    if (rows_in_txn >= opts.batch_rows) {
      txn->commit();
      txn.reset();
      rows_in_txn = 0;
      txn.emplace(*db);
    }
  }

  [[noreturn]] void bad_row(std::size_t index, const TransitionRow& t, const std::string& what) {
    throw RecordError(db->path().string() + ": transition " + std::to_string(index) +
                      " of batch " + std::to_string(batches_written) + " (user " +
                      std::to_string(t.user) + ", session " + std::to_string(t.session) +
                      ", step " + std::to_string(t.step) + "): " + what);
  }

  void check_transition(std::size_t index, const TransitionRow& t) {
    const auto dims = [&](const char* name, std::size_t got, int want, bool may_be_empty) {
      if (got == static_cast<std::size_t>(want) || (may_be_empty && got == 0)) return;
      bad_row(index, t,
              std::string(name) + " has " + std::to_string(got) + " values, expected " +
                  std::to_string(want) + (may_be_empty ? " or none" : "") +
                  " (RunInfo's state_dim/action_dim): the simulator built a malformed row");
    };
    dims("state", t.state.size(), state_dim, false);
    dims("action", t.action.size(), action_dim, false);
    dims("next_state", t.next_state.size(), state_dim, true);
    dims("baseline", t.baseline.size(), action_dim, true);
    dims("lower", t.lower.size(), action_dim, true);
    dims("upper", t.upper.size(), action_dim, true);
  }

  /// Inserts n transitions: full blocks through the multi-row statement, the rest
  /// one by one. bind(st, base, i) binds transition i at parameter offset base.
  template <typename Bind>
  void insert_transitions(std::size_t n, Bind&& bind) {
    std::size_t i = 0;
    for (; i + kTransitionsPerInsert <= n; i += kTransitionsPerInsert) {
      Statement& st = *ins_transitions_block;
      for (std::size_t k = 0; k < kTransitionsPerInsert; ++k)
        bind(st, static_cast<int>(k) * kTransitionColumns, i + k);
      st.run();
      count_rows(kTransitionsPerInsert);
    }
    for (; i < n; ++i) {
      bind(*ins_transition, 0, i);
      ins_transition->run();
      count_rows(1);
    }
    // Before the batch's memory goes: the blobs were bound SQLITE_STATIC.
    ins_transitions_block->clear_bindings();
    ins_transition->clear_bindings();
    transitions_written.fetch_add(static_cast<std::int64_t>(n), std::memory_order_relaxed);
  }

  void check_columns(const TransitionColumns& c) {
    const std::size_t n = c.size();
    if (n == 0) return;
    const std::string wrong = c.inconsistency();
    if (c.state_dim != state_dim || c.action_dim != action_dim || !wrong.empty())
      throw RecordError(db->path().string() + ": batch " + std::to_string(batches_written) +
                        ": transition columns do not match " + std::to_string(n) + " rows of state_dim " +
                        std::to_string(state_dim) + " and action_dim " + std::to_string(action_dim) +
                        " (RunInfo)" + (wrong.empty() ? "" : ": " + wrong) + ": the simulator built a malformed batch");
  }

  void write(const std::vector<GroupRow>& groups) {
    Statement& st = *ins_group;
    for (const GroupRow& g : groups) {
      st.bind(1, g.group);
      st.bind(2, std::string_view(g.name));
      st.bind(3, g.share);
      st.bind(4, std::string_view(g.policy));
      st.bind(5, std::string_view(g.policy_json));
      st.bind(6, g.users);
      st.run();
      count_row();
    }
    st.clear_bindings();
  }

  void write(const std::vector<AgentRow>& rows) {
    Statement& st = *ins_agent;
    for (const AgentRow& a : rows) {
      st.bind(1, std::string_view(a.name));
      st.bind(2, std::string_view(a.type));
      st.bind(3, a.steps);
      st.bind(4, std::string_view(a.source));
      st.bind(5, std::string_view(a.hyperparameters));
      st.bind(6, static_cast<std::int64_t>(a.data.size()));
      st.bind_bytes(7, a.data);
      st.run();
      count_row();
    }
    st.clear_bindings();
  }

  void write(const std::vector<MetricRow>& rows) {
    Statement& st = *ins_metric;
    const auto opt_int = [&](int i, const std::optional<std::int64_t>& v) {
      if (v) st.bind(i, *v);
      else st.bind_null(i);
    };
    for (const MetricRow& r : rows) {
      st.bind(1, std::string_view(r.section));
      st.bind(2, std::string_view(r.subject));
      st.bind(3, std::string_view(r.metric));
      if (std::isfinite(r.value)) st.bind(4, r.value);
      else st.bind_null(4);
      st.bind(5, r.ci_low);
      st.bind(6, r.ci_high);
      st.bind(7, r.p_value);
      opt_int(8, r.rep);
      opt_int(9, r.n);
      if (r.details.empty()) st.bind_null(10);
      else st.bind(10, std::string_view(r.details));
      st.run();
      count_row();
    }
    st.clear_bindings();
  }

  void write(const Barrier&) { commit_now = true; }

  void write(const Checkpoint& c) {
    db->exec(kCheckpointSchemaSql);
    db->exec("DELETE FROM resume_state");
    nlohmann::json rows = nlohmann::json::object();
    for (const char* table : kRowTables) {
      const std::string sql = std::string("SELECT coalesce(max(rowid), 0) FROM ") + table;
      rows[table] = pragma_int(*db, sql.c_str());
    }
    {
      const std::string table_rows = rows.dump();
      Statement st(*db, kInsertCheckpoint);
      st.bind(1, std::string_view(c.stage));
      st.bind(2, c.metrics_rows);
      st.bind(3, std::string_view(c.state));
      st.bind(4, std::string_view(table_rows));
      st.run();
    }
    {
      Statement drop(*db, "DELETE FROM resume_blobs WHERE name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '#'");
      for (const std::string& key : c.drop_large) {
        drop.bind(1, std::string_view(key));
        drop.run();
      }
    }
    // Each blob's row first, its bytes then in pieces: an INSERT of the bytes
    // would assemble the whole value in one record in memory (a users' state
    // twice, for the moment of the checkpoint).
    Statement st(*db, kInsertBlob);
    for (const auto& [name, data] : c.blobs) {
      st.bind(1, std::string_view(name));
      st.bind(2, static_cast<std::int64_t>(data.size()));
      st.run();
      if (!data.empty()) Blob(*db, "resume_blobs", "data", db->last_insert_rowid(), /*writable=*/true).write(data);
    }
    commit_now = true;
  }

  void write(const RecordBatch& b) {
    {
      Statement& st = *ins_impression;
      for (const ImpressionRow& r : b.impressions) {
        st.bind(1, r.user);
        st.bind(2, r.session);
        st.bind(3, r.step);
        st.bind(4, r.group);
        st.bind(5, r.position);
        st.bind(6, r.item);
        st.bind(7, r.valid ? 1 : 0);
        st.bind(8, static_cast<double>(r.reward));
        st.bind_floats(9, r.pred, false);
        st.run();
        count_row();
      }
      st.clear_bindings();
    }
    {
      Statement& st = *ins_session;
      for (const SessionRow& s : b.sessions) {
        st.bind(1, s.user);
        st.bind(2, s.session);
        st.bind(3, s.group);
        st.bind(4, s.day);
        st.bind(5, s.start_time);
        st.bind(6, s.end_time);
        st.bind(7, s.requests);
        st.bind(8, s.reward);
        bind_counts(st, 9, s.counts);
        st.run();
        count_row();
      }
      st.clear_bindings();
    }
    {
      const std::size_t n = b.transitions.size();
      for (std::size_t i = 0; i < n; ++i) check_transition(i, b.transitions[i]);
      insert_transitions(n, [&](Statement& st, int base, std::size_t i) {
        bind_transition(st, base, b.transitions[i]);
      });
    }
    {
      const TransitionColumns& c = b.transition_columns;
      check_columns(c);
      insert_transitions(c.size(), [&](Statement& st, int base, std::size_t i) {
        bind_transition(st, base, c, i);
      });
    }
    {
      Statement& st = *ins_user_day;
      for (const UserDayRow& u : b.user_days) {
        st.bind(1, u.user);
        st.bind(2, u.day);
        st.bind(3, u.group);
        st.bind(4, u.segment);
        st.bind(5, u.sessions);
        st.bind(6, u.requests);
        st.bind(7, u.reward);
        bind_counts(st, 8, u.counts);
        st.run();
        count_row();
      }
      st.clear_bindings();
    }
  }

  void writer_loop() noexcept {
    const double cpu0 = thread_cpu_seconds();
    try {
      for (;;) {
        Job job;
        {
          std::unique_lock lock(mutex);
          not_empty.wait(lock, [&] { return !queue.empty() || stopping; });
          if (queue.empty()) break;  // stopping, and everything is written
          job = std::move(queue.front());
          queue.pop_front();
        }
        not_full.notify_one();
        if (!txn) txn.emplace(*db);
        std::visit([&](const auto& j) { write(j); }, job);
        ++batches_written;
        // Commit when idle too, so a reader watching the file sees progress and a
        // slow producer does not keep one transaction open for the whole run.
        bool idle;
        {
          std::lock_guard lock(mutex);
          idle = queue.empty();
        }
        if ((idle || commit_now) && txn) {
          commit_now = false;
          txn->commit();
          txn.reset();
          rows_in_txn = 0;
          // Idle with more than 8 MiB cached: the page cache (up to
          // cache_mib, 64 MiB) goes back to the system, which otherwise holds
          // it beside every training and evaluation stage, when nothing is
          // written; the next batch reads the few pages an append needs
          // again. free() leaves the freed pages amid the heap's arenas:
          // malloc_trim hands them back too, at most every 5 s (it walks
          // every arena, under each one's lock).
          if (idle && db->cache_bytes() > (std::int64_t{8} << 20)) {
            db->release_memory();
#ifdef __GLIBC__
            if (const auto now = std::chrono::steady_clock::now(); now - last_trim >= std::chrono::seconds(5)) {
              last_trim = now;
              malloc_trim(0);
            }
#endif
          }
        }
        if (const auto* b = std::get_if<Barrier>(&job)) b->done->set_value();
        writer_cpu.store(thread_cpu_seconds() - cpu0, std::memory_order_relaxed);
      }
      if (txn) {
        txn->commit();
        txn.reset();
      }
    } catch (...) {
      txn.reset();  // rolls back the open transaction
      std::lock_guard lock(mutex);
      error = std::current_exception();
      queue.clear();  // nothing more will be written; unblock submit()
    }
    writer_cpu.store(thread_cpu_seconds() - cpu0, std::memory_order_relaxed);
    not_full.notify_all();
  }

  void enqueue(Job&& job) {
    if (discard) return;
    std::unique_lock lock(mutex);
    if (error) std::rethrow_exception(error);
    if (stopping || closed) {
      throw RecordError(db->path().string() +
                        ": the recorder was already finished; submit every batch before "
                        "calling finish()");
    }
    not_full.wait(lock, [&] { return queue.size() < opts.max_queued_batches || error; });
    if (error) std::rethrow_exception(error);
    queue.push_back(std::move(job));
    lock.unlock();
    not_empty.notify_one();
  }

  /// Stops the writer after it has written everything queued.
  void stop_writer() noexcept {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    not_empty.notify_all();
    if (writer.joinable()) writer.join();
  }

  /// Final steps of a finished or abandoned run: durable, checkpointed, one file.
  void close_file() {
    ins_group.reset();
    ins_session.reset();
    ins_transition.reset();
    ins_transitions_block.reset();
    ins_user_day.reset();
    ins_impression.reset();
    ins_metric.reset();
    ins_agent.reset();
    db->exec("PRAGMA synchronous = NORMAL");
    db->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    db->exec("PRAGMA journal_mode = DELETE");
    db.reset();
  }
};

Recorder::Recorder(const fs::path& path, const RunInfo& info, const RecorderOptions& opts)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opts = opts;
  if (m.opts.batch_rows == 0) m.opts.batch_rows = 1;
  if (m.opts.max_queued_batches == 0) m.opts.max_queued_batches = 1;
  m.state_dim = info.state_dim;
  m.action_dim = info.action_dim;
  m.target = path;
  m.file = opts.atomic ? partial_path(path) : path;
  if (opts.discard) {
    m.discard = m.closed = true;
    return;
  }

  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      throw RecordError(path.parent_path().string() + ": cannot create the output directory (" +
                        ec.message() + "): create it or choose another output path");
    }
  }
  check_replaceable(path, opts);
  std::error_code ec;
  if (opts.resume && !opts.atomic)
    throw RecordError(path.string() + ": only an atomic run (written to its .partial file) can resume");
  const bool resuming = opts.resume && fs::exists(m.file, ec);
  if (!resuming) remove_database_files(m.file);  // a stale .partial, or the target itself when not atomic

  m.db.emplace(m.file, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
  sqlite3_busy_timeout(m.db->get(), opts.busy_timeout_ms);
  if (resuming) {
    m.resumed = open_for_resume(*m.db, m.file, info);
    if (!m.resumed) {  // nothing worth keeping: start again
      m.db.reset();
      remove_database_files(m.file);
      m.db.emplace(m.file, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
      sqlite3_busy_timeout(m.db->get(), opts.busy_timeout_ms);
    }
  }
  Database& db = *m.db;
  if (!m.resumed) set_pragma(db, "page_size", opts.page_size);  // before the first table: fixes the file's page size
  set_pragma(db, "cache_size", -static_cast<std::int64_t>(opts.cache_mib) * 1024);
  db.exec(opts.wal ? "PRAGMA journal_mode = WAL" : "PRAGMA journal_mode = DELETE");
  db.exec("PRAGMA synchronous = OFF");  // bulk load; NORMAL again in close_file()
  db.exec("PRAGMA temp_store = MEMORY");
  // Checkpoint about every 64 MiB of WAL: fewer, larger checkpoints than the
  // default 1000 pages, with a bounded WAL file.
  set_pragma(db, "wal_autocheckpoint", std::max(1000, (64 << 20) / std::max(512, opts.page_size)));

  if (!m.resumed) {
    Transaction txn(db);
    db.exec(kSchemaSql);
    set_pragma(db, "user_version", kSchemaVersion);
    set_pragma(db, "application_id", kApplicationId);
    Statement st(db, kInsertRun);
    st.bind(1, std::string_view(info.scenario_name));
    st.bind(2, std::string_view(info.scenario_json));
    // SQLite integers are signed 64-bit: the seed is stored as its two's-complement
    // bit pattern and read back unchanged.
    st.bind(3, static_cast<std::int64_t>(info.seed));
    st.bind(4, std::string_view(info.code_version));
    st.bind(5, kSchemaVersion);
    st.bind(6, info.state_dim);
    st.bind(7, info.action_dim);
    st.bind(8, std::string_view(names_to_json(info.state_features)));
    st.bind(9, std::string_view(names_to_json(info.action_names)));
    st.bind(10, info.threads);
    st.bind(11, std::string_view(utc_now_iso8601()));
    st.run();
    txn.commit();
  }
  m.ins_group.emplace(db, kInsertGroup);
  m.ins_session.emplace(db, kInsertSession);
  m.ins_transition.emplace(db, kInsertTransition);
  m.ins_transitions_block.emplace(db, insert_transitions_sql(kTransitionsPerInsert).c_str());
  m.ins_user_day.emplace(db, kInsertUserDay);
  m.ins_impression.emplace(db, kInsertImpression);
  m.ins_metric.emplace(db, kInsertMetric);
  m.ins_agent.emplace(db, kInsertAgent);
  m.writer = std::thread([&m] { m.writer_loop(); });
}

Recorder::~Recorder() {
  Impl& m = *impl_;
  if (m.closed) return;
  // Not finished: keep what was submitted (useful to inspect a failed run) but
  // leave run.finished_at NULL, which marks the run as unfinished.
  m.stop_writer();
  try {
    if (m.db) m.close_file();
  } catch (...) {
    // Destructors never throw; the file stays marked unfinished.
  }
}

void Recorder::write_groups(const std::vector<GroupRow>& groups) { impl_->enqueue(groups); }

void Recorder::write_metrics(const std::vector<MetricRow>& rows) { impl_->enqueue(rows); }

void Recorder::write_agents(const std::vector<AgentRow>& rows) { impl_->enqueue(rows); }

void Recorder::submit(RecordBatch&& batch) { impl_->enqueue(std::move(batch)); }

void Recorder::finish(const std::vector<SummaryRow>& summary, double wall_seconds) {
  Impl& m = *impl_;
  if (m.discard) return;
  {
    std::lock_guard lock(m.mutex);
    if (m.closed || m.stopping) {
      throw RecordError(m.db ? m.db->path().string() + ": finish() was already called"
                             : std::string("Recorder::finish() was already called"));
    }
  }
  m.stop_writer();
  {
    std::lock_guard lock(m.mutex);
    m.closed = true;
  }
  if (m.error) {
    try {
      m.close_file();
    } catch (...) {
      // The writer's error is the one worth reporting.
    }
    std::rethrow_exception(m.error);
  }
  Database& db = *m.db;
  {
    Transaction txn(db);
    db.exec(kIndexSql);
    if (m.opts.index_transitions) db.exec(kTransitionIndexSql);
    Statement st(db, kInsertSummary);
    for (const SummaryRow& r : summary) {
      st.bind(1, r.group);
      st.bind(2, std::string_view(r.name));
      st.bind(3, std::string_view(r.metric));
      st.bind(4, r.value);  // NaN (an undefined metric) is stored as NULL by SQLite
      st.run();
    }
    Statement fin(db, kFinishRun);
    fin.bind(1, std::string_view(utc_now_iso8601()));
    fin.bind(2, wall_seconds);
    fin.run();
    db.exec("DROP TABLE IF EXISTS resume_state; DROP TABLE IF EXISTS resume_blobs");
    txn.commit();
  }
  // The dropped checkpoint tables (agents' states) leave free pages. Where
  // they are a large share of the file (small runs) it is rewritten without
  // them; in a large run they are a few MB of a large file and stay free
  // (incremental auto-vacuum would have cost every recorded run about 0.3 s
  // more at finish).
  if (pragma_int(db, "PRAGMA freelist_count") * 4 > pragma_int(db, "PRAGMA page_count")) db.exec("VACUUM");
  db.exec("PRAGMA optimize");
  m.close_file();
  if (m.file != m.target) {
    std::error_code ec;
    fs::rename(m.file, m.target, ec);
    if (ec)
      throw RecordError(m.file.string() + ": the run finished but cannot be moved onto " + m.target.string() +
                        " (" + ec.message() + "); the finished run is in " + m.file.string());
  }
}

void Recorder::checkpoint(Checkpoint c, bool wait) {
  if (impl_->discard) return;
  impl_->enqueue(std::move(c));
  if (!wait) return;
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> f = done->get_future();
  impl_->enqueue(Impl::Barrier{done});
  // The writer fulfils the promise after the commit; if it fails instead it
  // clears the queue (the promise is dropped): the error surfaces here.
  try {
    f.get();
  } catch (const std::future_error&) {
    std::lock_guard lock(impl_->mutex);
    if (impl_->error) std::rethrow_exception(impl_->error);
    throw;
  }
}

void Checkpoint::put_large(const std::string& key, std::string bytes, std::size_t piece) {
  if (piece == 0) throw std::invalid_argument("Checkpoint::put_large: the piece size must be > 0");
  erase_large(key);
  std::size_t n = 0;
  if (bytes.size() <= piece) {
    blobs[key + "#0"] = std::move(bytes);
    n = 1;
  } else {
    for (std::size_t at = 0; at < bytes.size(); at += piece) blobs[key + "#" + std::to_string(n++)] = bytes.substr(at, piece);
  }
  blobs[key + "#pieces"] = std::to_string(n);
}

std::string_view Checkpoint::large(const std::string& key, std::string& joined) const {
  const auto count = blobs.find(key + "#pieces");
  if (count == blobs.end()) {
    const auto one = blobs.find(key);
    if (one == blobs.end())
      throw std::invalid_argument("checkpoint: no blob " + key + " (written by another mtfsim version?)");
    return one->second;
  }
  std::size_t n = 0;
  const std::string& c = count->second;
  const auto [end, ec] = std::from_chars(c.data(), c.data() + c.size(), n);
  if (ec != std::errc() || end != c.data() + c.size() || n == 0)
    throw std::invalid_argument("checkpoint: blob " + key + "#pieces holds '" + c.substr(0, 20) +
                                "', not a count of pieces (a damaged run database?)");
  std::size_t total = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const auto it = blobs.find(key + "#" + std::to_string(k));
    if (it == blobs.end())
      throw std::invalid_argument("checkpoint: blob " + key + " lacks its piece " + std::to_string(k) + " of " +
                                  std::to_string(n) + " (a damaged run database?)");
    total += it->second.size();
  }
  if (n == 1) return blobs.at(key + "#0");
  joined.clear();
  joined.reserve(total);
  for (std::size_t k = 0; k < n; ++k) joined += blobs.at(key + "#" + std::to_string(k));
  return joined;
}

void Checkpoint::erase_large(const std::string& key) {
  blobs.erase(key);
  std::erase_if(blobs, [&](const auto& kv) {
    return kv.first.size() > key.size() + 1 && kv.first.compare(0, key.size() + 1, key + "#") == 0;
  });
}

const std::optional<Checkpoint>& Recorder::resumed() const { return impl_->resumed; }

const fs::path& Recorder::file() const { return impl_->file; }

std::int64_t Recorder::transitions_written() const {
  return impl_->transitions_written.load(std::memory_order_relaxed);
}

double Recorder::writer_cpu_seconds() const {
  return impl_->writer_cpu.load(std::memory_order_relaxed);
}

}  // namespace mtf
