// Transitions as columns: s' stored only where the next row's state differs.
#include "core/transitions.h"

#include <doctest/doctest.h>

#include <vector>

using namespace mtf;

namespace {
/// Pushes a row of one-float state s, s' = s_next (user 1, session 0).
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
