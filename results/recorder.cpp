// The run database: a small RAII wrapper over SQLite, the schema, the writer
// thread that turns RecordBatch objects into rows, and read_run.
//
// This is the only file in the project that includes sqlite3.h. Everything that
// touches a connection goes through Database / Statement / Transaction below.
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

#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>

namespace mtf {
namespace {

namespace fs = std::filesystem;

/// PRAGMA application_id of run databases ("MTFr"): tells a run database from
/// any other SQLite file.
constexpr std::int32_t kApplicationId = 0x4D544672;

// ---------------------------------------------------------------------------
// RAII wrapper
// ---------------------------------------------------------------------------

struct ConnectionCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};

/// One open connection; errors become RecordError naming the file.
class Database {
 public:
  Database(const fs::path& path, int flags) : path_(path) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.string().c_str(), &raw, flags, nullptr);
    db_.reset(raw);  // sqlite3_open_v2 may hand out a handle even on failure
    if (rc != SQLITE_OK) {
      throw RecordError(path.string() + ": cannot open the database (" +
                        (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)) + ")");
    }
    sqlite3_extended_result_codes(raw, 1);
  }

  sqlite3* get() const noexcept { return db_.get(); }
  const fs::path& path() const noexcept { return path_; }

  /// Runs constant SQL (never SQL with values spliced in: those are bound).
  void exec(const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &msg) != SQLITE_OK) {
      std::string text = msg ? msg : sqlite3_errmsg(db_.get());
      sqlite3_free(msg);
      throw RecordError(path_.string() + ": " + text + " (while running: " + sql + ")");
    }
  }

  /// Primary result code of the last failed call (SQLITE_NOTADB, SQLITE_BUSY...).
  int error_code() const noexcept { return sqlite3_errcode(db_.get()) & 0xff; }

  [[noreturn]] void fail(std::string_view doing) const {
    throw RecordError(path_.string() + ": " + sqlite3_errmsg(db_.get()) + " (while " +
                      std::string(doing) + ")");
  }

 private:
  fs::path path_;
  std::unique_ptr<sqlite3, ConnectionCloser> db_;
};

/// A prepared statement, reused: bind, step, reset.
class Statement {
 public:
  Statement(Database& db, const char* sql) : db_(&db), sql_(sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) !=
        SQLITE_OK) {
      db.fail(std::string("preparing: ") + sql);
    }
    stmt_.reset(raw);
  }

  void bind(int i, std::int64_t v) { check(sqlite3_bind_int64(stmt_.get(), i, v)); }
  void bind(int i, int v) { check(sqlite3_bind_int(stmt_.get(), i, v)); }
  void bind(int i, double v) { check(sqlite3_bind_double(stmt_.get(), i, v)); }
  void bind_null(int i) { check(sqlite3_bind_null(stmt_.get(), i)); }
  /// Text is copied by SQLite (these statements are not on the hot path).
  void bind(int i, std::string_view v) {
    check(sqlite3_bind_text64(stmt_.get(), i, v.data(), v.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
  }
  void bind(int i, const std::optional<double>& v) {
    if (v) bind(i, *v);
    else bind_null(i);
  }
  /// Binds float32 little-endian bytes. Without copying on little-endian
  /// machines: `v` must stay alive and unchanged until reset()/clear_bindings().
  /// An empty vector becomes a zero-length blob when `empty_is_null` is false.
  void bind_floats(int i, std::span<const float> v, bool empty_is_null) {
    if (v.empty()) {
      check(empty_is_null ? sqlite3_bind_null(stmt_.get(), i)
                          : sqlite3_bind_zeroblob(stmt_.get(), i, 0));
      return;
    }
    if constexpr (std::endian::native == std::endian::little) {
      check(sqlite3_bind_blob64(stmt_.get(), i, v.data(), v.size_bytes(), SQLITE_STATIC));
    } else {
      std::vector<std::uint32_t> swapped(v.size());
      for (std::size_t k = 0; k < v.size(); ++k) {
        std::uint32_t u;
        std::memcpy(&u, &v[k], 4);
        swapped[k] = __builtin_bswap32(u);
      }
      check(sqlite3_bind_blob64(stmt_.get(), i, swapped.data(), v.size_bytes(),
                                SQLITE_TRANSIENT));
    }
  }

  /// Steps once: true when a row is available, false when done. Throws on error.
  bool step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sqlite3_reset(stmt_.get());
    db_->fail(std::string("running: ") + sql_);
  }
  /// Steps a statement that returns no rows, then resets it for the next use.
  void run() {
    step();
    reset();
  }
  void reset() noexcept { sqlite3_reset(stmt_.get()); }
  void clear_bindings() noexcept { sqlite3_clear_bindings(stmt_.get()); }

  bool is_null(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  int int32(int col) const { return sqlite3_column_int(stmt_.get(), col); }
  double real(int col) const { return sqlite3_column_double(stmt_.get(), col); }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_.get(), col);
    const int n = sqlite3_column_bytes(stmt_.get(), col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
             : std::string();
  }
  std::optional<double> optional_real(int col) const {
    if (is_null(col)) return std::nullopt;
    return real(col);
  }
  /// NULL and zero-length blobs both read as an empty vector.
  std::vector<float> floats(int col, std::string_view column_name) const {
    const void* p = sqlite3_column_blob(stmt_.get(), col);
    const int n = sqlite3_column_bytes(stmt_.get(), col);
    if (n % 4 != 0) {
      throw RecordError(db_->path().string() + ": column " + std::string(column_name) +
                        " holds a blob of " + std::to_string(n) +
                        " bytes, expected float32 values (a multiple of 4 bytes): the file "
                        "is damaged or was not written by mtfsim");
    }
    std::vector<float> v(static_cast<std::size_t>(n / 4));
    if (n > 0) std::memcpy(v.data(), p, static_cast<std::size_t>(n));
    if constexpr (std::endian::native != std::endian::little) {
      for (float& x : v) {
        std::uint32_t u;
        std::memcpy(&u, &x, 4);
        u = __builtin_bswap32(u);
        std::memcpy(&x, &u, 4);
      }
    }
    return v;
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) [[unlikely]]
      db_->fail(std::string("binding a parameter of: ") + sql_);
  }

  Database* db_;
  const char* sql_;
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> stmt_;
};

/// BEGIN on construction; ROLLBACK in the destructor unless commit() was called.
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(&db) { db.exec("BEGIN"); }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (db_) sqlite3_exec(db_->get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    db_->exec("COMMIT");  // on failure the destructor still rolls back
    db_ = nullptr;
  }

 private:
  Database* db_;
};

std::int64_t pragma_int(Database& db, const char* sql) {
  Statement st(db, sql);
  if (!st.step()) return 0;
  return st.int64(0);
}

/// Sets a pragma whose value is a number we compute; pragmas cannot take bound
/// parameters, and an integer formatted by std::to_string cannot inject SQL.
void set_pragma(Database& db, const char* name, std::int64_t value) {
  const std::string sql = std::string("PRAGMA ") + name + " = " + std::to_string(value);
  db.exec(sql.c_str());
}

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

std::vector<std::string> names_from_json(const std::string& text, const fs::path& path,
                                         std::string_view column) {
  try {
    return nlohmann::json::parse(text).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    throw RecordError(path.string() + ": run." + std::string(column) +
                      " is not a JSON array of strings (the file is damaged or was not "
                      "written by mtfsim)");
  }
}

// ---------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------

// Column order here is the documented one (README.md, "Database schema").
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE run (
  scenario_name TEXT NOT NULL,
  scenario_json TEXT NOT NULL,
  seed INTEGER NOT NULL,
  code_version TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  state_dim INTEGER NOT NULL,
  action_dim INTEGER NOT NULL,
  state_features TEXT NOT NULL,
  action_names TEXT NOT NULL,
  threads INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  wall_seconds REAL
);
CREATE TABLE groups (
  grp INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  share REAL NOT NULL,
  policy TEXT NOT NULL,
  policy_json TEXT NOT NULL,
  users INTEGER NOT NULL
);
CREATE TABLE sessions (
  user INTEGER NOT NULL, session INTEGER NOT NULL, grp INTEGER NOT NULL, day INTEGER NOT NULL,
  start_time REAL NOT NULL, end_time REAL NOT NULL, requests INTEGER NOT NULL,
  reward REAL NOT NULL,
  shown INTEGER NOT NULL, plays INTEGER NOT NULL, valid INTEGER NOT NULL,
  finishes INTEGER NOT NULL, likes INTEGER NOT NULL, shares INTEGER NOT NULL,
  comments INTEGER NOT NULL, skips INTEGER NOT NULL,
  watch_seconds REAL NOT NULL, dwell_seconds REAL NOT NULL
);
CREATE TABLE transitions (
  user INTEGER NOT NULL, session INTEGER NOT NULL, step INTEGER NOT NULL, grp INTEGER NOT NULL,
  time REAL NOT NULL,
  state BLOB NOT NULL, action BLOB NOT NULL, next_state BLOB NOT NULL,
  reward REAL NOT NULL, done INTEGER NOT NULL,
  shown INTEGER NOT NULL, plays INTEGER NOT NULL, valid INTEGER NOT NULL,
  finishes INTEGER NOT NULL, likes INTEGER NOT NULL, shares INTEGER NOT NULL,
  comments INTEGER NOT NULL, skips INTEGER NOT NULL,
  watch_seconds REAL NOT NULL, dwell_seconds REAL NOT NULL,
  baseline BLOB, lower BLOB, upper BLOB, log_density REAL
);
CREATE TABLE user_days (
  user INTEGER NOT NULL, day INTEGER NOT NULL, grp INTEGER NOT NULL, segment INTEGER NOT NULL,
  sessions INTEGER NOT NULL, requests INTEGER NOT NULL, reward REAL NOT NULL,
  shown INTEGER NOT NULL, plays INTEGER NOT NULL, valid INTEGER NOT NULL,
  finishes INTEGER NOT NULL, likes INTEGER NOT NULL, shares INTEGER NOT NULL,
  comments INTEGER NOT NULL, skips INTEGER NOT NULL,
  watch_seconds REAL NOT NULL, dwell_seconds REAL NOT NULL
);
CREATE TABLE summary (
  grp INTEGER NOT NULL, name TEXT NOT NULL, metric TEXT NOT NULL, value REAL
);
CREATE TABLE impressions (
  user INTEGER NOT NULL, session INTEGER NOT NULL, step INTEGER NOT NULL, grp INTEGER NOT NULL,
  position INTEGER NOT NULL, item INTEGER NOT NULL, valid INTEGER NOT NULL, reward REAL NOT NULL,
  pred BLOB NOT NULL
);
CREATE TABLE metrics (
  section TEXT NOT NULL, subject TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
  ci_low REAL, ci_high REAL, p_value REAL, rep INTEGER, n INTEGER, details TEXT
);
)sql";

constexpr const char* kTransitionIndexSql =
    "CREATE INDEX transitions_by_user ON transitions(user, session, step)";
constexpr const char* kIndexSql = R"sql(
CREATE INDEX sessions_by_user ON sessions(user, session);
CREATE INDEX user_days_by_group ON user_days(grp, day);
CREATE INDEX user_days_by_user ON user_days(user, day);
)sql";

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

BehaviourCounts read_counts(const Statement& st, int first) {
  BehaviourCounts c;
  c.shown = st.int32(first + 0);
  c.plays = st.int32(first + 1);
  c.valid = st.int32(first + 2);
  c.finishes = st.int32(first + 3);
  c.likes = st.int32(first + 4);
  c.shares = st.int32(first + 5);
  c.comments = st.int32(first + 6);
  c.skips = st.int32(first + 7);
  c.watch_seconds = static_cast<float>(st.real(first + 8));
  c.dwell_seconds = static_cast<float>(st.real(first + 9));
  return c;
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
                  t.log_density,
                  {slice(c.state, S), slice(c.action, A), slice(c.next_state, S),
                   t.has_baseline ? slice(c.baseline, A) : none, t.has_bounds ? slice(c.lower, A) : none,
                   t.has_bounds ? slice(c.upper, A) : none});
}

constexpr const char* kInsertUserDay =
    "INSERT INTO user_days VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
    "?15, ?16, ?17)";
constexpr const char* kInsertImpression =
    "INSERT INTO impressions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* kInsertMetric =
    "INSERT INTO metrics VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
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

}  // namespace

// ---------------------------------------------------------------------------
// Recorder
// ---------------------------------------------------------------------------

struct Recorder::Impl {
  using Job = std::variant<RecordBatch, std::vector<GroupRow>, std::vector<MetricRow>>;

  RecorderOptions opts;
  int state_dim = 0, action_dim = 0;
  std::optional<Database> db;
  std::optional<Statement> ins_group, ins_session, ins_transition, ins_transitions_block,
      ins_user_day, ins_impression, ins_metric;

  std::mutex mutex;
  std::condition_variable not_empty, not_full;
  std::deque<Job> queue;
  bool stopping = false;
  bool closed = false;  // finish() ran (or the destructor closed the file)
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
    const auto S = static_cast<std::size_t>(state_dim), A = static_cast<std::size_t>(action_dim);
    const bool ok = c.state_dim == state_dim && c.action_dim == action_dim && c.state.size() == n * S &&
                    c.action.size() == n * A && c.next_state.size() == n * S && c.baseline.size() == n * A &&
                    c.lower.size() == n * A && c.upper.size() == n * A;
    if (!ok)
      throw RecordError(db->path().string() + ": batch " + std::to_string(batches_written) +
                        ": transition columns do not match " + std::to_string(n) + " rows of state_dim " +
                        std::to_string(state_dim) + " and action_dim " + std::to_string(action_dim) +
                        " (RunInfo): the simulator built a malformed batch");
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
        if (idle && txn) {
          txn->commit();
          txn.reset();
          rows_in_txn = 0;
        }
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

  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      throw RecordError(path.parent_path().string() + ": cannot create the output directory (" +
                        ec.message() + "): create it or choose another output path");
    }
  }
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (!opts.overwrite) {
      throw RecordError(path.string() +
                        ": the file already exists: choose another output path or allow "
                        "overwriting");
    }
    remove_database_files(path);
  }

  m.db.emplace(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
  Database& db = *m.db;
  sqlite3_busy_timeout(db.get(), opts.busy_timeout_ms);
  set_pragma(db, "page_size", opts.page_size);  // before the first table: fixes the file's page size
  set_pragma(db, "cache_size", -static_cast<std::int64_t>(opts.cache_mib) * 1024);
  db.exec(opts.wal ? "PRAGMA journal_mode = WAL" : "PRAGMA journal_mode = DELETE");
  db.exec("PRAGMA synchronous = OFF");  // bulk load; NORMAL again in close_file()
  db.exec("PRAGMA temp_store = MEMORY");
  // Checkpoint about every 64 MiB of WAL: fewer, larger checkpoints than the
  // default 1000 pages, with a bounded WAL file.
  set_pragma(db, "wal_autocheckpoint", std::max(1000, (64 << 20) / std::max(512, opts.page_size)));

  {
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

void Recorder::submit(RecordBatch&& batch) { impl_->enqueue(std::move(batch)); }

void Recorder::finish(const std::vector<SummaryRow>& summary, double wall_seconds) {
  Impl& m = *impl_;
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
    txn.commit();
  }
  db.exec("PRAGMA optimize");
  m.close_file();
}

std::int64_t Recorder::transitions_written() const {
  return impl_->transitions_written.load(std::memory_order_relaxed);
}

double Recorder::writer_cpu_seconds() const {
  return impl_->writer_cpu.load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Reading back
// ---------------------------------------------------------------------------

RunContents read_run(const fs::path& path, bool with_transitions, bool with_rows) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw RecordError(path.string() +
                      ": no such run database (check the path; runs are written by "
                      "`mtfsim run SCENARIO.json --out FILE.sqlite`)");
  }
  Database db(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);

  // The header check: SQLite reports a non-database file on the first read.
  std::int64_t version = 0;
  try {
    version = pragma_int(db, "PRAGMA user_version");
  } catch (const RecordError&) {
    if (db.error_code() != SQLITE_NOTADB) throw;
    throw RecordError(path.string() +
                      ": not an SQLite database, so not a run database (expected a file "
                      "written by `mtfsim run`; check the path)");
  }
  const std::int64_t app_id = pragma_int(db, "PRAGMA application_id");
  if (app_id != kApplicationId) {
    throw RecordError(path.string() +
                      ": an SQLite database, but not a run database written by mtfsim "
                      "(application_id " +
                      std::to_string(app_id) + ", user_version " + std::to_string(version) +
                      "); check the path");
  }
  if (version != kSchemaVersion) {
    const bool newer = version > kSchemaVersion;
    throw RecordError(
        path.string() + ": run database schema version " + std::to_string(version) +
        ", but this build reads version " + std::to_string(kSchemaVersion) + ": " +
        (newer ? "it was written by a newer mtfsim; read it with that version, or re-run the "
                 "scenario with this build"
               : "it was written by an older mtfsim; re-run the scenario with this build (the "
                 "scenario is stored in the file: sqlite3 FILE 'SELECT scenario_json FROM "
                 "run' > scenario.json)"));
  }

  RunContents out;
  out.schema_version = static_cast<int>(version);
  {
    Statement st(db,
                 "SELECT scenario_name, scenario_json, seed, code_version, state_dim, "
                 "action_dim, state_features, action_names, threads, started_at, finished_at, "
                 "wall_seconds FROM run");
    if (!st.step()) {
      throw RecordError(path.string() +
                        ": the run table is empty (the run did not get past its start; "
                        "re-run the scenario)");
    }
    RunInfo& info = out.info;
    info.scenario_name = st.text(0);
    info.scenario_json = st.text(1);
    info.seed = static_cast<std::uint64_t>(st.int64(2));
    info.code_version = st.text(3);
    info.state_dim = st.int32(4);
    info.action_dim = st.int32(5);
    info.state_features = names_from_json(st.text(6), path, "state_features");
    info.action_names = names_from_json(st.text(7), path, "action_names");
    info.threads = st.int32(8);
    out.started_at = st.text(9);
    out.finished_at = st.text(10);
    out.wall_seconds = st.optional_real(11);
  }
  {
    Statement st(db,
                 "SELECT grp, name, share, policy, policy_json, users FROM groups ORDER BY grp");
    while (st.step()) {
      GroupRow g;
      g.group = st.int32(0);
      g.name = st.text(1);
      g.share = st.real(2);
      g.policy = st.text(3);
      g.policy_json = st.text(4);
      g.users = st.int64(5);
      out.groups.push_back(std::move(g));
    }
  }
  if (with_rows) {
    Statement st(db, "SELECT * FROM sessions ORDER BY rowid");
    while (st.step()) {
      SessionRow s;
      s.user = st.int64(0);
      s.session = st.int32(1);
      s.group = st.int32(2);
      s.day = st.int32(3);
      s.start_time = st.real(4);
      s.end_time = st.real(5);
      s.requests = st.int32(6);
      s.reward = st.real(7);
      s.counts = read_counts(st, 8);
      out.sessions.push_back(s);
    }
  }
  if (with_transitions) {
    Statement st(db, "SELECT * FROM transitions ORDER BY rowid");
    while (st.step()) {
      TransitionRow t;
      t.user = st.int64(0);
      t.session = st.int32(1);
      t.step = st.int32(2);
      t.group = st.int32(3);
      t.time = st.real(4);
      t.state = st.floats(5, "transitions.state");
      t.action = st.floats(6, "transitions.action");
      t.next_state = st.floats(7, "transitions.next_state");
      t.reward = static_cast<float>(st.real(8));
      t.done = st.int64(9) != 0;
      t.counts = read_counts(st, 10);
      t.baseline = st.floats(20, "transitions.baseline");
      t.lower = st.floats(21, "transitions.lower");
      t.upper = st.floats(22, "transitions.upper");
      t.log_density = st.optional_real(23);
      out.transitions.push_back(std::move(t));
    }
  }
  if (with_rows) {
    Statement st(db, "SELECT * FROM user_days ORDER BY rowid");
    while (st.step()) {
      UserDayRow u;
      u.user = st.int64(0);
      u.day = st.int32(1);
      u.group = st.int32(2);
      u.segment = st.int32(3);
      u.sessions = st.int32(4);
      u.requests = st.int32(5);
      u.reward = st.real(6);
      u.counts = read_counts(st, 7);
      out.user_days.push_back(u);
    }
  }
  {
    Statement st(db, "SELECT grp, name, metric, value FROM summary ORDER BY rowid");
    while (st.step()) {
      SummaryRow r;
      r.group = st.int32(0);
      r.name = st.text(1);
      r.metric = st.text(2);
      r.value = st.is_null(3) ? std::nan("") : st.real(3);
      out.summary.push_back(std::move(r));
    }
  }
  if (with_rows) {
    Statement st(db, "SELECT * FROM impressions ORDER BY rowid");
    while (st.step()) {
      ImpressionRow r;
      r.user = st.int64(0);
      r.session = st.int32(1);
      r.step = st.int32(2);
      r.group = st.int32(3);
      r.position = st.int32(4);
      r.item = st.int32(5);
      r.valid = st.int64(6) != 0;
      r.reward = static_cast<float>(st.real(7));
      const std::vector<float> pred = st.floats(8, "impressions.pred");
      if (pred.size() != r.pred.size())
        throw RecordError(path.string() + ": impressions.pred holds " + std::to_string(pred.size()) +
                          " floats, expected " + std::to_string(r.pred.size()) + " (damaged file)");
      std::copy(pred.begin(), pred.end(), r.pred.begin());
      out.impressions.push_back(r);
    }
  }
  {
    Statement st(db, "SELECT * FROM metrics ORDER BY rowid");
    const auto opt_int = [&](int col) -> std::optional<std::int64_t> {
      if (st.is_null(col)) return std::nullopt;
      return st.int64(col);
    };
    while (st.step()) {
      MetricRow r;
      r.section = st.text(0);
      r.subject = st.text(1);
      r.metric = st.text(2);
      r.value = st.is_null(3) ? std::nan("") : st.real(3);
      r.ci_low = st.optional_real(4);
      r.ci_high = st.optional_real(5);
      r.p_value = st.optional_real(6);
      r.rep = opt_int(7);
      r.n = opt_int(8);
      r.details = st.is_null(9) ? std::string() : st.text(9);
      out.metrics.push_back(std::move(r));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Benchmark
// ---------------------------------------------------------------------------

RecorderBenchResult bench_recorder(const fs::path& file, std::int64_t transitions, int state_dim,
                                   int action_dim, const RecorderOptions& opts) {
  RunInfo info;
  info.scenario_name = "bench";
  info.scenario_json = "{}";
  info.code_version = "bench";
  info.state_dim = state_dim;
  info.action_dim = action_dim;
  for (int i = 0; i < state_dim; ++i) info.state_features.push_back("s" + std::to_string(i));
  for (int i = 0; i < action_dim; ++i) info.action_names.push_back("a" + std::to_string(i));

  // Distinct, non-trivial float values so the blobs do not compress into anything special.
  TransitionRow tmpl;
  tmpl.group = 1;
  for (int i = 0; i < state_dim; ++i) {
    tmpl.state.push_back(0.1f * static_cast<float>(i) + 0.37f);
    tmpl.next_state.push_back(0.1f * static_cast<float>(i) + 0.41f);
  }
  for (int i = 0; i < action_dim; ++i) {
    tmpl.action.push_back(0.05f * static_cast<float>(i) - 0.3f);
    tmpl.baseline.push_back(0.04f * static_cast<float>(i) - 0.2f);
    tmpl.lower.push_back(-0.5f);
    tmpl.upper.push_back(0.5f);
  }
  tmpl.log_density = -3.25;
  tmpl.counts = {6, 3, 2, 1, 1, 0, 0, 1, 41.5f, 47.5f};

  constexpr std::int64_t kBatch = 4096;
  RecorderBenchResult r;
  r.transitions = transitions;
  Recorder rec(file, info, opts);
  rec.write_groups({{0, "a", 0.5, "constant", "{}", 10}, {1, "b", 0.5, "baseline", "{}", 10}});
  const auto t0 = std::chrono::steady_clock::now();
  for (std::int64_t done = 0; done < transitions; done += kBatch) {
    RecordBatch b;
    const std::int64_t n = std::min(kBatch, transitions - done);
    b.transitions.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      TransitionRow& t = b.transitions.emplace_back(tmpl);
      const std::int64_t k = done + i;
      t.user = k / 8;
      t.step = static_cast<std::int32_t>(k % 8);
      t.time = static_cast<double>(k);
      t.reward = static_cast<float>(k % 7);
      t.done = k % 8 == 7;
      if (k % 8 == 7) {
        SessionRow s;
        s.user = t.user;
        s.requests = 8;
        s.counts = tmpl.counts;
        b.sessions.push_back(s);
      }
      if (k % 16 == 15) {
        UserDayRow u;
        u.user = t.user;
        u.sessions = 2;
        u.counts = tmpl.counts;
        b.user_days.push_back(u);
      }
    }
    rec.submit(std::move(b));
  }
  // Wait for the writer to drain the queue (finish() would also build indexes).
  while (rec.transitions_written() < transitions) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const auto t1 = std::chrono::steady_clock::now();
  r.writer_cpu_seconds = rec.writer_cpu_seconds();
  rec.finish({{0, "a", "valid_consumption", 1.0}}, 0.0);
  const auto t2 = std::chrono::steady_clock::now();
  r.insert_seconds = std::chrono::duration<double>(t1 - t0).count();
  r.finish_seconds = std::chrono::duration<double>(t2 - t1).count();
  r.rows_per_cpu_second =
      r.writer_cpu_seconds > 0 ? static_cast<double>(transitions) / r.writer_cpu_seconds : 0;
  r.rows_per_second = static_cast<double>(transitions) / (r.insert_seconds + r.finish_seconds);
  return r;
}

double bench_recorder_rows_per_second(const fs::path& file, std::int64_t transitions,
                                      int state_dim, int action_dim) {
  return bench_recorder(file, transitions, state_dim, action_dim).rows_per_second;
}

}  // namespace mtf
