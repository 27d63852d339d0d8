// The schema of a run database: the tables (column order is the documented one,
// README.md "Database schema"), the indexes built by finish(), and the
// application id that tells a run database from any other SQLite file.
//
// Internal to results/: shared by the writer (recorder.cpp) and the reader
// (run_reader.cpp).
#pragma once

#include <cstdint>

namespace mtf::run_schema {

/// PRAGMA application_id of run databases ("MTFr"): tells a run database from
/// any other SQLite file.
inline constexpr std::int32_t kApplicationId = 0x4D544672;

// Column order here is the documented one (README.md, "Database schema").
inline constexpr const char* kSchemaSql = R"sql(
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
CREATE TABLE agents (
  name TEXT NOT NULL, type TEXT NOT NULL, steps INTEGER NOT NULL, source TEXT NOT NULL,
  hyperparameters TEXT NOT NULL, bytes INTEGER NOT NULL, data BLOB NOT NULL
);
)sql";

inline constexpr const char* kTransitionIndexSql =
    "CREATE INDEX transitions_by_user ON transitions(user, session, step)";
inline constexpr const char* kIndexSql = R"sql(
CREATE INDEX sessions_by_user ON sessions(user, session);
CREATE INDEX user_days_by_group ON user_days(grp, day);
CREATE INDEX user_days_by_user ON user_days(user, day);
)sql";

}  // namespace mtf::run_schema
