// The transition types: one request of one session as (s, a, r, s', done) plus
// what the behaviour policy knew, as a row or as columns. The simulator produces
// them, the run database stores them, the agents' datasets learn from them, so
// they live at the bottom.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/tasks.h"

namespace mtf {

/// One request of one session: (s, a, r, s', done) plus what the behaviour policy knew.
struct TransitionRow {
  std::int64_t user = 0;
  std::int32_t session = 0;
  std::int32_t step = 0;      ///< request index within the session, from 0
  std::int32_t group = 0;
  double time = 0;            ///< simulated seconds at the request
  std::vector<float> state, action, next_state;
  float reward = 0;
  bool done = false;          ///< the session ended after this request
  BehaviourCounts counts;
  std::vector<float> baseline;            ///< empty when unknown
  std::vector<float> lower, upper;        ///< empty when unknown
  std::optional<double> log_density;      ///< nullopt when unknown
};

/// Transitions in columnar form, which is how the simulator hands them over:
/// no allocation per row, and the writer binds the blobs straight from the flat
/// arrays. Row i's vectors are the slices [i * dim, (i + 1) * dim); baseline,
/// lower and upper hold action_dim values for every row and are written as NULL
/// where the row's has_baseline / has_bounds flag is false.
struct TransitionColumns {
  struct Row {
    std::int64_t user = 0;
    std::int32_t session = 0, step = 0, group = 0;
    double time = 0;
    float reward = 0;
    bool done = false, has_baseline = false, has_bounds = false;
    BehaviourCounts counts;
    std::optional<double> log_density;
  };
  int state_dim = 0, action_dim = 0;
  std::vector<Row> rows;
  std::vector<float> state, action, next_state, baseline, lower, upper;

  std::size_t size() const { return rows.size(); }
  void clear() {
    rows.clear();
    for (auto* v : {&state, &action, &next_state, &baseline, &lower, &upper}) v->clear();
  }
  /// Appends all of `other`'s rows (same dimensions).
  void append(const TransitionColumns& other) {
    rows.insert(rows.end(), other.rows.begin(), other.rows.end());
    const auto add = [](std::vector<float>& to, const std::vector<float>& from) {
      to.insert(to.end(), from.begin(), from.end());
    };
    add(state, other.state);
    add(action, other.action);
    add(next_state, other.next_state);
    add(baseline, other.baseline);
    add(lower, other.lower);
    add(upper, other.upper);
  }
};

}  // namespace mtf
