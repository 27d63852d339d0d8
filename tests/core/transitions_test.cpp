// Transitions as columns: s' stored only where the next row's state differs.
#include "core/transitions.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

using namespace mtf;

namespace {
/// Pushes a row of one-float state s, s' = s_next (user 1, session 0), with
/// bounds [-1, 1] (each row a bounds slot).
void add(TransitionColumns& c, int step, float s, float s_next, bool done) {
  TransitionColumns::Row r;
  r.user = 1;
  r.step = step;
  r.done = done;
  const float a = 0.5f, b = 0.0f, lo = -1.0f, hi = 1.0f;
  c.push(r, {&s, 1}, {&a, 1}, {&s_next, 1}, {&b, 1}, {&lo, 1}, {&hi, 1});
}
float next_of(const TransitionColumns& c, std::size_t i) { return c.next_state_of(i)[0]; }
}  // namespace

TEST_CASE("s' is stored only where it differs from the next row's state, and reads back the same") {
  TransitionColumns c;
  c.state_dim = 1;
  c.action_dim = 1;
  add(c, 0, 1.0f, 2.0f, false);
  add(c, 1, 2.0f, 3.0f, false);  // row 0's s' is this state: dropped from storage
  add(c, 2, 3.0f, 9.0f, true);   // row 1's likewise; a session's end keeps its own
  add(c, 0, 4.0f, 5.0f, false);  // a new session whose state is not row 2's s'
  add(c, 1, 7.0f, 8.0f, true);   // row 3's s' (5) differs from this state: kept
  REQUIRE(c.size() == 5);
  CHECK(c.next_state_slots() == 3);
  CHECK(c.rows[0].next_state_slot == TransitionColumns::kFollowing);
  CHECK(c.rows[1].next_state_slot == TransitionColumns::kFollowing);
  const std::vector<float> want = {2, 3, 9, 5, 8};
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(next_of(c, i) == want[i]);
  CHECK(c.dense_next_states() == want);
  CHECK(c.inconsistency().empty());

  // Appending keeps every s' (slots move by the slots already stored).
  TransitionColumns all = c;
  all.append(c);
  REQUIRE(all.size() == 10);
  CHECK(all.next_state_slots() == 6);
  for (std::size_t i = 0; i < 10; ++i) CHECK(next_of(all, i) == want[i % 5]);
  CHECK(all.inconsistency().empty());
}

TEST_CASE("columns that do not hold together are described, not read out of bounds") {
  TransitionColumns c;
  c.state_dim = 1;
  c.action_dim = 1;
  add(c, 0, 1.0f, 2.0f, false);
  add(c, 1, 2.0f, 3.0f, true);
  TransitionColumns last = c;
  last.rows.back().next_state_slot = TransitionColumns::kFollowing;
  CHECK(last.inconsistency().find("last row") != std::string::npos);
  TransitionColumns beyond = c;
  beyond.rows.back().next_state_slot = 7;
  CHECK(beyond.inconsistency().find("slot 7 is beyond the 1 stored") != std::string::npos);
  TransitionColumns short_state = c;
  short_state.state.pop_back();
  CHECK(short_state.inconsistency().find("column state holds 1 values, expected 2") != std::string::npos);
  // Rows added by hand with a dense s' column (not through push()).
  TransitionColumns dense = c;
  dense.next_state = {2.0f, 3.0f};
  CHECK(dense.inconsistency().find("2 s' stored but 1 rows refer to one") != std::string::npos);
}

TEST_CASE("exploration bounds are stored only for the rows that have them, and read back the same") {
  TransitionColumns c;
  c.state_dim = 1;
  c.action_dim = 2;
  const float s = 0.0f, b[2] = {0.1f, 0.2f};
  const auto push = [&](int step, bool bounded) {
    TransitionColumns::Row r;
    r.step = step;
    const float a[2] = {0.0f, 0.0f}, lo[2] = {-0.1f * step, -0.2f}, hi[2] = {0.1f * step, 0.3f};
    c.push(r, {&s, 1}, a, {&s, 1}, b, bounded ? std::span<const float>(lo) : std::span<const float>(),
           bounded ? std::span<const float>(hi) : std::span<const float>());
  };
  push(0, false);
  push(1, true);
  push(2, false);
  push(3, true);
  REQUIRE(c.size() == 4);
  CHECK(c.bounds_slots() == 2);
  CHECK(c.lower.size() == 4);  // two rows x two dimensions, not four rows
  CHECK_FALSE(c.rows[0].has_bounds());
  CHECK(c.rows[1].has_bounds());
  CHECK(c.lower_of(0).empty());
  CHECK(c.upper_of(2).empty());
  CHECK(c.lower_of(3)[0] == -0.3f);
  CHECK(c.upper_of(1)[0] == 0.1f);
  CHECK(c.upper_of(3)[1] == 0.3f);
  CHECK(c.inconsistency().empty());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> lower = c.dense_bounds(false, nan);
  REQUIRE(lower.size() == 8);
  CHECK(std::isnan(lower[0]));
  CHECK(lower[2] == -0.1f);
  CHECK(std::isnan(lower[5]));
  CHECK(lower[6] == -0.3f);

  // Appending moves the appended rows' slots by the bounds already stored.
  TransitionColumns all = c;
  all.append(c);
  CHECK(all.bounds_slots() == 4);
  CHECK(all.rows[7].bounds_slot == 3);
  for (std::size_t i = 0; i < 8; ++i) {
    CAPTURE(i);
    CHECK(all.rows[i].has_bounds() == c.rows[i % 4].has_bounds());
    CHECK(std::vector<float>(all.lower_of(i).begin(), all.lower_of(i).end()) ==
          std::vector<float>(c.lower_of(i % 4).begin(), c.lower_of(i % 4).end()));
  }
  CHECK(all.inconsistency().empty());
  // Bounds of the wrong length, or only one of the two, are refused.
  TransitionColumns::Row r;
  const float one = 1.0f, a[2] = {0.0f, 0.0f};
  CHECK_THROWS_AS(c.push(r, {&s, 1}, a, {&s, 1}, b, std::span<const float>(&one, 1), std::span<const float>(&one, 1)),
                  std::invalid_argument);
  CHECK_THROWS_AS(c.push(r, {&s, 1}, a, {&s, 1}, b, b, std::span<const float>()), std::invalid_argument);
  // A slot that skips one is described.
  TransitionColumns skipped = c;
  skipped.rows[3].bounds_slot = 5;
  CHECK(skipped.inconsistency().find("bounds slot 5 is not the next one (1)") != std::string::npos);
}

TEST_CASE("a row's scalars are 80 bytes; counts and groups outside their 16 bits are refused, not wrapped") {
  CHECK(sizeof(TransitionColumns::Row) == 80);
  BehaviourCounts counts;
  counts.shown = 65535;
  counts.plays = 3;
  counts.watch_seconds = 12.25;
  const RequestCounts narrow = RequestCounts::of(counts);
  const BehaviourCounts back = narrow;
  CHECK(back.shown == 65535);
  CHECK(back.plays == 3);
  CHECK(back.watch_seconds == 12.25);
  counts.likes = 65536;
  CHECK_THROWS_WITH_AS(RequestCounts::of(counts), doctest::Contains("likes count 65536"), std::out_of_range);
  counts.likes = -1;
  CHECK_THROWS_AS(RequestCounts::of(counts), std::out_of_range);
  TransitionColumns::Row r;
  r.set_group(32767);
  CHECK(r.group == 32767);
  CHECK_THROWS_AS(r.set_group(32768), std::out_of_range);
  CHECK_FALSE(r.has_log_density());
  r.log_density = -2.5;
  CHECK(r.has_log_density());
}

TEST_CASE("reserving rows makes room in every column in proportion, without changing what they hold") {
  TransitionColumns c;
  c.state_dim = 1;
  c.action_dim = 1;
  add(c, 0, 1.0f, 2.0f, false);
  add(c, 1, 2.0f, 3.0f, true);  // two rows, one s' slot, two bounds slots
  const TransitionColumns before = c;
  c.reserve_rows(40);
  CHECK(c.rows.capacity() >= 40);
  CHECK(c.state.capacity() >= 40);
  CHECK(c.next_state.capacity() >= 20);  // the proportion stored so far: one slot per two rows
  CHECK(c.lower.capacity() >= 40);
  CHECK(c.state == before.state);
  CHECK(c.next_state == before.next_state);
  CHECK(c.lower == before.lower);
  CHECK(c.inconsistency().empty());
  // Spare above the fraction is released; within it, kept.
  c.release_spare(100.0);
  CHECK(c.rows.capacity() >= 40);
  c.release_spare(0.0);
  CHECK(c.rows.capacity() < 40);
  CHECK(c.state == before.state);
}
