// The offline dataset: columns, next-state bounds, normalisation, minibatches.
#include <doctest/doctest.h>

#include <filesystem>

#include "agents/dataset.h"

using namespace mtf;
using namespace mtf::agents;

namespace {
TransitionRow row(std::int64_t user, int session, int step, float s, bool done) {
  TransitionRow r;
  r.user = user;
  r.session = session;
  r.step = step;
  r.state = {s, 1.0f};
  r.next_state = {s + 1, 1.0f};
  r.action = {0.1f * step};
  r.reward = s;
  r.done = done;
  r.baseline = {0.1f * step};
  r.lower = {0.1f * step - 0.15f};
  r.upper = {0.1f * step + 0.15f};
  return r;
}
}  // namespace

TEST_CASE("a dataset links each transition to the bounds of the next request in its session") {
  // Out of order on purpose: the link is by (user, session, step), not by position.
  std::vector<TransitionRow> rows = {row(1, 0, 1, 2, true), row(1, 0, 0, 1, false), row(2, 0, 0, 5, false)};
  const Dataset d(rows);
  Batch b;
  d.gather({0, 1, 2}, b);
  CHECK(b.next_lower(0, 1) == doctest::Approx(0.1f - 0.15f));  // from row 0 (step 1)
  CHECK(b.next_upper(0, 1) == doctest::Approx(0.1f + 0.15f));
  CHECK(b.next_lower(0, 0) == b.lower(0, 0));  // session ended: own bounds stand in
  CHECK(b.next_lower(0, 2) == b.lower(0, 2));  // next row missing: own bounds
  CHECK(b.done(0, 0) == 1.0f);
  CHECK(b.has_bounds(0, 2) == 1.0f);
}

TEST_CASE("the state normalisation is computed from the data and leaves constant features centred") {
  std::vector<TransitionRow> rows = {row(1, 0, 0, 1, false), row(1, 0, 1, 3, true)};
  const Dataset d(rows);
  CHECK(d.normaliser().mean(0) == doctest::Approx(2.0f));
  CHECK(d.normaliser().stddev(0) == doctest::Approx(1.0f));
  CHECK(d.normaliser().stddev(1) == 1.0f);  // the constant "bias" feature
  Matrix out;
  d.normaliser().apply(d.states(), out);
  CHECK(out(0, 0) == doctest::Approx(-1.0f));
  CHECK(out(1, 0) == 0.0f);
}

TEST_CASE("minibatches come from the caller's seeded stream") {
  std::vector<TransitionRow> rows;
  for (int i = 0; i < 50; ++i) rows.push_back(row(i, 0, 0, float(i), true));
  const Dataset d(rows);
  Batch a, b, c;
  Rng r1(3), r2(3), r3(4);
  d.sample(r1, 16, a);
  d.sample(r2, 16, b);
  d.sample(r3, 16, c);
  CHECK(a.state == b.state);
  CHECK(a.state != c.state);
}

TEST_CASE("inconsistent transitions are rejected with the row named") {
  std::vector<TransitionRow> rows = {row(1, 0, 0, 1, false), row(1, 0, 1, 3, true)};
  rows[1].action = {0.1f, 0.2f};
  CHECK_THROWS_WITH_AS(Dataset{rows}, doctest::Contains("transition 1.action has 2 values, expected 1"),
                       std::invalid_argument);
  CHECK_THROWS_AS(Dataset{std::vector<TransitionRow>{}}, std::invalid_argument);
}
