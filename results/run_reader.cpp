// Reading a run database back (read_run): the header and schema-version checks
// with a clear message for a file that is not a run database, then the tables
// into a RunContents. Goes through the SQLite wrapper of results/sqlite_db.h.
#include "results/recorder.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <system_error>

#include "results/run_schema.h"
#include "results/sqlite_db.h"

namespace mtf {
namespace {

namespace fs = std::filesystem;
using namespace sqlite;
using namespace run_schema;

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

}  // namespace

// ---------------------------------------------------------------------------
// Reading back
// ---------------------------------------------------------------------------

namespace {

/// Opens `path` read-only after the checks every reader makes: a regular,
/// non-empty SQLite file with a run database's application id and this build's
/// schema version. Returns the schema version.
std::int64_t open_checked(const fs::path& path, std::optional<Database>& out) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw RecordError(path.string() + ": is a directory, not a run database (check the path)");
  if (fs::is_regular_file(path, ec) && fs::file_size(path, ec) == 0 && !ec) {
    throw RecordError(path.string() +
                      ": the file is empty, not a run database (expected a file written by `mtfsim run`; "
                      "check the path)");
  }
  if (!fs::is_regular_file(path, ec)) {
    throw RecordError(path.string() +
                      ": no such run database (check the path; runs are written by "
                      "`mtfsim run SCENARIO.json --out FILE.sqlite`)");
  }
  out.emplace(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
  Database& db = *out;

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
  if (version < kOldestReadableSchemaVersion || version > kSchemaVersion) {
    const bool newer = version > kSchemaVersion;
    throw RecordError(
        path.string() + ": run database schema version " + std::to_string(version) +
        ", but this build reads versions " + std::to_string(kOldestReadableSchemaVersion) + " to " +
        std::to_string(kSchemaVersion) + ": " +
        (newer ? "it was written by a newer mtfsim; read it with that version, or re-run the "
                 "scenario with this build"
               : "it was written by an older mtfsim; re-run the scenario with this build (the "
                 "scenario is stored in the file: sqlite3 FILE 'SELECT scenario_json FROM "
                 "run' > scenario.json)"));
  }
  return version;
}

bool has_table(Database& db, const char* name) {
  Statement st(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
  st.bind(1, std::string_view(name));
  return st.step();
}

/// Refuses an unfinished run (unless allow_partial), naming how far it got.
void check_finished(Database& db, const fs::path& path, bool allow_partial) {
  if (allow_partial) return;
  Statement st(db, "SELECT started_at, finished_at FROM run");
  if (!st.step()) {
    throw UnfinishedRunError(path.string() +
                             ": the run table is empty (the run did not get past its start; "
                             "re-run the scenario)");
  }
  if (!st.is_null(1)) return;
  std::string got_to;
  if (has_table(db, "resume_state")) {
    Statement cp(db, "SELECT stage FROM resume_state");
    if (cp.step()) got_to = "; its experiment completed stages up to '" + cp.text(0) + "'";
  }
  fs::path target = path;
  if (target.extension() == ".partial") target.replace_extension();
  throw UnfinishedRunError(
      path.string() + ": the run did not finish (started " + st.text(0) +
      ", no finished_at: it was killed, failed or is still running" + got_to +
      "), so its tables are incomplete. Continue an experiment with `mtfsim run SCENARIO.json --resume --out " +
      target.string() + "`, run it again, or read it as it is with --allow-partial");
}

TransitionColumns::Row column_row(const Statement& st) {
  TransitionColumns::Row r;
  r.user = st.int64(0);
  r.session = st.int32(1);
  r.step = st.int32(2);
  r.set_group(st.int64(3));
  r.time = st.real(4);
  r.reward = static_cast<float>(st.real(8));
  r.done = st.int64(9) != 0;
  r.counts = RequestCounts::of(read_counts(st, 10));
  if (const std::optional<double> d = st.optional_real(23)) r.log_density = *d;
  return r;
}

ImpressionRow impression_row(const Statement& st, const fs::path& path) {
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
  return r;
}

/// The rows of table agents (none in a schema 2 file).
std::vector<AgentRow> agent_rows(Database& db, const fs::path& path, bool with_data) {
  std::vector<AgentRow> out;
  if (!has_table(db, "agents")) return out;
  Statement st(db, with_data ? "SELECT name, type, steps, source, hyperparameters, bytes, data FROM agents ORDER BY rowid"
                             : "SELECT name, type, steps, source, hyperparameters, bytes FROM agents ORDER BY rowid");
  while (st.step()) {
    AgentRow a;
    a.name = st.text(0);
    a.type = st.text(1);
    a.steps = st.int64(2);
    a.source = st.text(3);
    a.hyperparameters = st.text(4);
    a.bytes = st.int64(5);
    if (with_data) {
      a.data = st.bytes(6);
      if (static_cast<std::int64_t>(a.data.size()) != a.bytes)
        throw RecordError(path.string() + ": agent " + a.name + " holds " + std::to_string(a.data.size()) +
                          " bytes, its row says " + std::to_string(a.bytes) + " (damaged file)");
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

bool is_run_database(const fs::path& path) {
  try {
    std::optional<Database> db;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) == 0) return false;
    db.emplace(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
    return pragma_int(*db, "PRAGMA application_id") == kApplicationId;
  } catch (const RecordError&) {
    return false;
  }
}

RunContents read_run(const fs::path& path, bool with_transitions, bool with_rows, bool allow_partial) {
  std::optional<Database> opened;
  const std::int64_t version = open_checked(path, opened);
  Database& db = *opened;
  check_finished(db, path, allow_partial);

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
      const ImpressionRow r = impression_row(st, path);
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
  out.agents = agent_rows(db, path, /*with_data=*/false);
  return out;
}

std::vector<AgentRow> read_agents(const fs::path& path, bool with_data, bool allow_partial) {
  std::optional<Database> opened;
  open_checked(path, opened);
  Database& db = *opened;
  check_finished(db, path, allow_partial);
  return agent_rows(db, path, with_data);
}

TransitionColumns read_transition_columns(const fs::path& path, bool allow_partial) {
  return read_transition_columns(path, allow_partial, 1, 0);
}

TransitionColumns read_transition_columns(const fs::path& path, bool allow_partial, int shards, int shard) {
  TransitionColumns all;
  read_transition_chunks(path, allow_partial, shards, shard, std::numeric_limits<std::size_t>::max(),
                         [&](TransitionColumns& c) { all = std::move(c); });
  return all;
}

void read_transition_chunks(const fs::path& path, bool allow_partial, int shards, int shard, std::size_t chunk_rows,
                            const std::function<void(TransitionColumns&)>& consume) {
  if (shards < 1 || shard < 0 || shard >= shards)
    throw std::invalid_argument("read_transition_columns: shard " + std::to_string(shard) + " of " +
                                std::to_string(shards));
  if (chunk_rows < 1) throw std::invalid_argument("read_transition_chunks: chunk_rows must be at least 1");
  std::optional<Database> opened;
  open_checked(path, opened);
  Database& db = *opened;
  check_finished(db, path, allow_partial);
  TransitionColumns c;
  {
    Statement st(db, "SELECT state_dim, action_dim FROM run");
    if (st.step()) {
      c.state_dim = st.int32(0);
      c.action_dim = st.int32(1);
    }
  }
  if (c.state_dim <= 0 || c.action_dim <= 0)
    throw RecordError(path.string() + ": run.state_dim and run.action_dim must be positive (damaged file)");
  const auto S = static_cast<std::size_t>(c.state_dim), A = static_cast<std::size_t>(c.action_dim);
  const std::string where =
      shards > 1 ? " WHERE user % " + std::to_string(shards) + " = " + std::to_string(shard) : std::string();
  const std::string sql = "SELECT * FROM transitions" + where + " ORDER BY rowid";
  Statement st(db, sql.c_str());
  std::size_t read = 0;  // transitions read before this one
  const auto take = [&](std::vector<float>& to, int col, const char* name, std::size_t n, float fill,
                        bool may_be_empty) {
    const std::vector<float> v = st.floats(col, name);
    if (v.empty() && may_be_empty) {
      to.insert(to.end(), n, fill);
      return false;
    }
    if (v.size() != n)
      throw RecordError(path.string() + ": " + name + " of transition " + std::to_string(read) + " holds " +
                        std::to_string(v.size()) + " floats, expected " + std::to_string(n) + " (damaged file)");
    to.insert(to.end(), v.begin(), v.end());
    return true;
  };
  std::vector<float> s, a, s_next, b, lo, hi;
  bool any = false;  // a chunk was handed over
  for (; st.step(); ++read) {
    TransitionColumns::Row r;
    try {
      r = column_row(st);
    } catch (const std::out_of_range& e) {
      throw RecordError(path.string() + ": transition " + std::to_string(read) + ": " + e.what() +
                        " (damaged file, or written by another program)");
    }
    for (auto* v : {&s, &a, &s_next, &b, &lo, &hi}) v->clear();
    take(s, 5, "transitions.state", S, 0.0f, false);
    take(a, 6, "transitions.action", A, 0.0f, false);
    take(s_next, 7, "transitions.next_state", S, 0.0f, true);
    r.has_baseline = take(b, 20, "transitions.baseline", A, 0.0f, true);
    const bool lower = take(lo, 21, "transitions.lower", A, -1.0f, true);
    const bool upper = take(hi, 22, "transitions.upper", A, 1.0f, true);
    if (!lower && !upper) {  // no bounds: none stored
      lo.clear();
      hi.clear();
    }
    c.push(r, s, a, s_next, b, lo, hi);
    if (c.size() == chunk_rows) {
      any = true;
      consume(c);
      c.clear();
    }
  }
  // The last (or only) chunk; an empty run still hands over its dimensions.
  if (c.size() > 0 || !any) {
    c.shrink_to_fit();
    consume(c);
  }
}

std::vector<ImpressionRow> read_impressions(const fs::path& path, bool allow_partial) {
  std::optional<Database> opened;
  open_checked(path, opened);
  Database& db = *opened;
  check_finished(db, path, allow_partial);
  std::vector<ImpressionRow> out;
  Statement st(db, "SELECT * FROM impressions ORDER BY rowid");
  while (st.step()) out.push_back(impression_row(st, path));
  return out;
}

}  // namespace mtf
