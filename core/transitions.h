// The transition types: one request of one session as (s, a, r, s', done) plus
// what the behaviour policy knew, as a row or as columns. The simulator produces
// them, the run database stores them, the agents' datasets learn from them, so
// they live at the bottom.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <cstring>
#include <span>
#include <string>
#include <optional>
#include <stdexcept>
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

/// Transitions in columnar form (TransitionColumns below), read-only: the same
/// columns wherever they live, in memory (TransitionColumns::view()) or in a
/// memory-mapped column file (core/column_file.h). Valid while what it views
/// lives and does not grow.
struct TransitionColumnsView;

/// Transitions in columnar form, which is how the simulator hands them over:
/// no allocation per row, and the writer binds the blobs straight from the flat
/// arrays. Row i's state, action and baseline are the slices [i * dim,
/// (i + 1) * dim); the baseline holds action_dim values for every row and is
/// written as NULL where the row's has_baseline flag is false. Exploration
/// bounds are stored only for the rows that have them: lower_of(i) and
/// upper_of(i) are slot Row::bounds_slot of `lower` and `upper`, empty where the
/// slot is kNoBounds (a Gaussian or a deterministic policy's rows).
///
/// s' is stored only where it differs from the next row's state: within a
/// session the next request's state is s' itself (the simulator builds both
/// at the same moment), so only sessions' last rows keep theirs. Row i's s' is
/// next_state_of(i): slot Row::next_state_slot of `next_state`, or the state
/// of row i + 1 where the slot is kFollowing. Rows are added with push(),
/// which decides that; the last row always has a slot of its own.
struct TransitionColumns {
  static constexpr std::uint32_t kFollowing = 0xFFFFFFFFu;
  static constexpr std::uint32_t kNoBounds = 0xFFFFFFFFu;
  /// One row's scalars, 80 bytes: a row of every recorded transition, so its
  /// fields are as narrow as their ranges allow (counts in 16 bits, the group
  /// in 16 bits, an unknown log density as NaN) and ordered without padding.
  struct Row {
    std::int64_t user = 0;
    double time = 0;
    double log_density = std::numeric_limits<double>::quiet_NaN();  ///< NaN when unknown
    RequestCounts counts;
    std::int32_t session = 0, step = 0;
    std::uint32_t next_state_slot = kFollowing;  ///< see next_state_of()
    std::uint32_t bounds_slot = kNoBounds;       ///< see lower_of(); set by push()
    float reward = 0;
    std::int16_t group = 0;                      ///< set with set_group() (checked)
    bool done = false, has_baseline = false;

    bool has_bounds() const { return bounds_slot != kNoBounds; }
    bool has_log_density() const { return !std::isnan(log_density); }
    /// Sets the group; throws std::out_of_range when it does not fit in 16 bits
    /// (a scenario has far fewer groups; a damaged record may not).
    void set_group(std::int64_t g) {
      if (g < std::numeric_limits<std::int16_t>::min() || g > std::numeric_limits<std::int16_t>::max())
        throw std::out_of_range("transition group " + std::to_string(g) +
                                " is outside the 16-bit range the transition columns hold (-32768 .. 32767)");
      group = static_cast<std::int16_t>(g);
    }
  };
  int state_dim = 0, action_dim = 0;
  std::vector<Row> rows;
  std::vector<float> state, action, baseline;
  std::vector<float> lower, upper;  ///< the stored bounds only, action_dim values per slot
  std::vector<float> next_state;    ///< the stored s' only, state_dim values per slot

  std::size_t size() const { return rows.size(); }
  std::size_t next_state_slots() const {
    return state_dim > 0 ? next_state.size() / static_cast<std::size_t>(state_dim) : 0;
  }
  /// Row i's s' (state_dim values).
  std::span<const float> next_state_of(std::size_t i) const {
    const auto S = static_cast<std::size_t>(state_dim);
    const std::uint32_t slot = rows[i].next_state_slot;
    return slot == kFollowing ? std::span<const float>(state.data() + (i + 1) * S, S)
                              : std::span<const float>(next_state.data() + slot * S, S);
  }
  /// Row i's exploration bounds (action_dim values each), empty when it has none.
  std::span<const float> lower_of(std::size_t i) const { return bounds_of(lower, i); }
  std::span<const float> upper_of(std::size_t i) const { return bounds_of(upper, i); }
  std::size_t bounds_slots() const {
    return action_dim > 0 ? lower.size() / static_cast<std::size_t>(action_dim) : 0;
  }
  /// The columns as a read-only view (valid until the next append).
  TransitionColumnsView view() const;
  /// A copy of viewed columns (mapped ones, say) in memory.
  static TransitionColumns copy_of(const TransitionColumnsView& v);
  /// Appends a row with its vectors: the baseline action_dim values whatever
  /// the flag says; the bounds action_dim values each where the row has
  /// exploration bounds, both empty where it has none (row.bounds_slot is set
  /// here). The previous row's s' is dropped from storage when it equals this
  /// row's state bit for bit; this row's s' is stored.
  void push(Row row, std::span<const float> s, std::span<const float> a, std::span<const float> s_next,
            std::span<const float> b, std::span<const float> lo, std::span<const float> hi) {
    const auto S = static_cast<std::size_t>(state_dim), A = static_cast<std::size_t>(action_dim);
    if (state_dim <= 0 || s.size() != S || s_next.size() != S)
      throw std::invalid_argument("TransitionColumns::push: state_dim is " + std::to_string(state_dim) +
                                  " but the row's state and s' hold " + std::to_string(s.size()) + " and " +
                                  std::to_string(s_next.size()) + " values (set state_dim first)");
    if (lo.size() != hi.size() || (!lo.empty() && lo.size() != A))
      throw std::invalid_argument("TransitionColumns::push: the row's bounds hold " + std::to_string(lo.size()) +
                                  " and " + std::to_string(hi.size()) + " values; expected " +
                                  std::to_string(A) + " each, or none for a row without bounds");
    if (next_state_slots() >= kFollowing || bounds_slots() >= kNoBounds)
      throw std::length_error("TransitionColumns::push: more s' or bounds slots than 32 bits number");
    if (!rows.empty() && rows.back().next_state_slot != kFollowing &&
        rows.back().next_state_slot + 1 == next_state_slots() &&
        std::memcmp(next_state.data() + next_state.size() - S, s.data(), S * sizeof(float)) == 0) {
      next_state.resize(next_state.size() - S);
      rows.back().next_state_slot = kFollowing;
    }
    row.next_state_slot = static_cast<std::uint32_t>(next_state_slots());
    row.bounds_slot = lo.empty() ? kNoBounds : static_cast<std::uint32_t>(bounds_slots());
    rows.push_back(row);
    const auto add = [](std::vector<float>& to, std::span<const float> from) {
      to.insert(to.end(), from.begin(), from.end());
    };
    add(state, s);
    add(action, a);
    add(next_state, s_next);
    add(baseline, b);
    add(lower, lo);
    add(upper, hi);
  }
  /// Appends row i of `from` (the same dimensions) with its s'
  /// (from.next_state_of(i)), as push() does: a subset of rows copied this
  /// way keeps every row's s' whether or not the row after it is copied too.
  void push_row(const TransitionColumnsView& from, std::size_t i);
  /// Every s' as a dense size() x state_dim array (exports, Python).
  std::vector<float> dense_next_states() const;
  /// Every row's lower (upper: `upper`) bounds as a dense size() x action_dim
  /// array, `unknown` where a row has none (exports, Python: NaN).
  std::vector<float> dense_bounds(bool upper, float unknown) const;
  /// Empty when the columns are consistent; else what is wrong, for an error
  /// message (sizes against dimensions, s' and bounds slots out of range or unused).
  std::string inconsistency() const;

  void clear() {
    rows.clear();
    for (auto* v : {&state, &action, &next_state, &baseline, &lower, &upper}) v->clear();
  }
  /// Releases the spare capacity of every column (after the last append).
  void shrink_to_fit() { release_spare(0.0); }
  /// Releases the spare capacity of the columns whose capacity exceeds their
  /// size by more than `fraction` of it. Releasing copies a column, so for a
  /// moment it is held twice; a little spare costs less than that moment.
  void release_spare(double fraction) {
    const auto release = [fraction](auto& v) {
      if (static_cast<double>(v.capacity()) > static_cast<double>(v.size()) * (1.0 + fraction)) v.shrink_to_fit();
    };
    release(rows);
    for (auto* v : {&state, &action, &next_state, &baseline, &lower, &upper}) release(*v);
  }
  /// Makes room for `total_rows` rows in all (no more than that many: a
  /// column already larger keeps its capacity), with s' and bounds slots in
  /// the proportion stored so far, so that appends up to there do not grow
  /// the columns by doubling (which holds the old and the new copy at once).
  void reserve_rows(std::size_t total_rows) {
    if (rows.empty() || total_rows <= rows.size()) return;
    const double scale = static_cast<double>(total_rows) / static_cast<double>(rows.size());
    const auto grow = [scale](auto& v) {
      const auto want = static_cast<std::size_t>(static_cast<double>(v.size()) * scale);
      if (want > v.capacity()) v.reserve(want);
    };
    grow(rows);
    for (auto* v : {&state, &action, &next_state, &baseline, &lower, &upper}) grow(*v);
  }
  /// Appends all of `other`'s rows (same dimensions).
  void append(const TransitionColumns& other) {
    if (next_state_slots() + other.next_state_slots() >= kFollowing ||
        bounds_slots() + other.bounds_slots() >= kNoBounds)
      throw std::length_error("TransitionColumns::append: more s' or bounds slots than 32 bits number");
    const auto offset = static_cast<std::uint32_t>(next_state_slots());
    const auto bounds_offset = static_cast<std::uint32_t>(bounds_slots());
    const std::size_t first = rows.size();
    rows.insert(rows.end(), other.rows.begin(), other.rows.end());
    for (std::size_t i = first; i < rows.size(); ++i) {
      if (rows[i].next_state_slot != kFollowing) rows[i].next_state_slot += offset;
      if (rows[i].bounds_slot != kNoBounds) rows[i].bounds_slot += bounds_offset;
    }
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

 private:
  std::span<const float> bounds_of(const std::vector<float>& v, std::size_t i) const {
    const auto A = static_cast<std::size_t>(action_dim);
    const std::uint32_t slot = rows[i].bounds_slot;
    return slot == kNoBounds ? std::span<const float>() : std::span<const float>(v.data() + slot * A, A);
  }
};

static_assert(sizeof(TransitionColumns::Row) == 80, "a row's scalars are meant to fill 80 bytes");

struct TransitionColumnsView {
  using Row = TransitionColumns::Row;
  static constexpr std::uint32_t kFollowing = TransitionColumns::kFollowing;
  static constexpr std::uint32_t kNoBounds = TransitionColumns::kNoBounds;
  int state_dim = 0, action_dim = 0;
  std::span<const Row> rows;
  std::span<const float> state, action, baseline;
  std::span<const float> lower, upper;  ///< the stored bounds only (TransitionColumns::lower)
  std::span<const float> next_state;    ///< the stored s' only (TransitionColumns::next_state)

  std::size_t size() const { return rows.size(); }
  std::size_t next_state_slots() const {
    return state_dim > 0 ? next_state.size() / static_cast<std::size_t>(state_dim) : 0;
  }
  /// Row i's s' (state_dim values).
  std::span<const float> next_state_of(std::size_t i) const {
    const auto S = static_cast<std::size_t>(state_dim);
    const std::uint32_t slot = rows[i].next_state_slot;
    return slot == kFollowing ? state.subspan((i + 1) * S, S) : next_state.subspan(slot * S, S);
  }
  std::size_t bounds_slots() const {
    return action_dim > 0 ? lower.size() / static_cast<std::size_t>(action_dim) : 0;
  }
  /// Row i's exploration bounds (action_dim values each), empty when it has none.
  std::span<const float> lower_of(std::size_t i) const { return bounds_of(lower, i); }
  std::span<const float> upper_of(std::size_t i) const { return bounds_of(upper, i); }
  /// Every s' as a dense size() x state_dim array.
  std::vector<float> dense_next_states() const {
    std::vector<float> out;
    out.reserve(size() * static_cast<std::size_t>(state_dim));
    for (std::size_t i = 0; i < size(); ++i) {
      const std::span<const float> v = next_state_of(i);
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  }
  /// Every row's lower (upper: `upper`) bounds as a dense size() x action_dim
  /// array, `unknown` where a row has none.
  std::vector<float> dense_bounds(bool upper, float unknown) const {
    const auto A = static_cast<std::size_t>(action_dim);
    std::vector<float> out(size() * A, unknown);
    for (std::size_t i = 0; i < size(); ++i) {
      const std::span<const float> b = upper ? upper_of(i) : lower_of(i);
      std::copy(b.begin(), b.end(), out.begin() + static_cast<std::ptrdiff_t>(i * A));
    }
    return out;
  }
  /// Empty when the columns are consistent; else what is wrong, for an error
  /// message (sizes against dimensions, s' and bounds slots out of range or unused).
  std::string inconsistency() const {
    const std::size_t n = size();
    const auto S = static_cast<std::size_t>(state_dim), A = static_cast<std::size_t>(action_dim);
    const auto column = [&](std::span<const float> v, std::size_t d, const char* name) -> std::string {
      if (v.size() == n * d) return {};
      return std::string("column ") + name + " holds " + std::to_string(v.size()) + " values, expected " +
             std::to_string(n * d) + " (" + std::to_string(n) + " rows x " + std::to_string(d) + ")";
    };
    for (const std::string& e : {column(state, S, "state"), column(action, A, "action"),
                                 column(baseline, A, "baseline")})
      if (!e.empty()) return e;
    if (A > 0 && (lower.size() % A != 0 || upper.size() != lower.size()))
      return "columns lower and upper hold " + std::to_string(lower.size()) + " and " +
             std::to_string(upper.size()) + " values, not the same whole actions of " + std::to_string(A);
    std::size_t bounded = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t slot = rows[i].bounds_slot;
      if (slot == kNoBounds) continue;
      if (slot != bounded)
        return "row " + std::to_string(i) + "'s bounds slot " + std::to_string(slot) + " is not the next one (" +
               std::to_string(bounded) + ")";
      ++bounded;
    }
    if (bounded != bounds_slots())
      return std::to_string(bounds_slots()) + " bounds stored but " + std::to_string(bounded) +
             " rows refer to one (rows added without push()?)";
    if (S > 0 && next_state.size() % S != 0)
      return "column next_state holds " + std::to_string(next_state.size()) + " values, not whole states of " +
             std::to_string(S);
    std::size_t used = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t slot = rows[i].next_state_slot;
      if (slot == kFollowing) {
        if (i + 1 == n) return "the last row's s' is marked as the next row's state";
        continue;
      }
      if (slot >= next_state_slots())
        return "row " + std::to_string(i) + "'s s' slot " + std::to_string(slot) + " is beyond the " +
               std::to_string(next_state_slots()) + " stored";
      ++used;
    }
    if (used != next_state_slots())
      return std::to_string(next_state_slots()) + " s' stored but " + std::to_string(used) +
             " rows refer to one (rows added without push()?)";
    return {};
  }

 private:
  std::span<const float> bounds_of(std::span<const float> v, std::size_t i) const {
    const auto A = static_cast<std::size_t>(action_dim);
    const std::uint32_t slot = rows[i].bounds_slot;
    return slot == kNoBounds ? std::span<const float>() : v.subspan(slot * A, A);
  }
};

inline TransitionColumnsView TransitionColumns::view() const {
  return {state_dim, action_dim, rows, state, action, baseline, lower, upper, next_state};
}
inline TransitionColumns TransitionColumns::copy_of(const TransitionColumnsView& v) {
  TransitionColumns c;
  c.state_dim = v.state_dim;
  c.action_dim = v.action_dim;
  c.rows.assign(v.rows.begin(), v.rows.end());
  c.state.assign(v.state.begin(), v.state.end());
  c.action.assign(v.action.begin(), v.action.end());
  c.baseline.assign(v.baseline.begin(), v.baseline.end());
  c.lower.assign(v.lower.begin(), v.lower.end());
  c.upper.assign(v.upper.begin(), v.upper.end());
  c.next_state.assign(v.next_state.begin(), v.next_state.end());
  return c;
}
inline void TransitionColumns::push_row(const TransitionColumnsView& from, std::size_t i) {
  const auto S = static_cast<std::size_t>(from.state_dim), A = static_cast<std::size_t>(from.action_dim);
  push(from.rows[i], from.state.subspan(i * S, S), from.action.subspan(i * A, A), from.next_state_of(i),
       from.baseline.subspan(i * A, A), from.lower_of(i), from.upper_of(i));
}
inline std::vector<float> TransitionColumns::dense_next_states() const { return view().dense_next_states(); }
inline std::vector<float> TransitionColumns::dense_bounds(bool upper, float unknown) const {
  return view().dense_bounds(upper, unknown);
}
inline std::string TransitionColumns::inconsistency() const { return view().inconsistency(); }

}  // namespace mtf
