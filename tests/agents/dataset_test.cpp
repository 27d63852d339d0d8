// The offline dataset: columns, next-state bounds, normalisation, minibatches.
#include "agents/dataset.h"
#include "core/column_file.h"
#include "test_problems.h"
#include "transition_rows.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>
#include <optional>

using namespace mtf;
using namespace mtf::agents;

using mtf::testing::row;

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

TEST_CASE("datasets over shared columns are views: no copy, the copies' minibatches, unchanged by appends") {
  std::vector<TransitionRow> rows;
  for (int i = 0; i < 30; ++i) {
    rows.push_back(row(i / 5, 0, i % 5, float(i), i % 5 == 4));
    if (i % 7 == 3) rows.back().lower.clear(), rows.back().upper.clear();
    if (i % 6 == 2) rows.back().baseline.clear();
  }
  const auto shared = std::make_shared<TransitionColumns>(TransitionColumns::copy_of(Dataset(rows).columns()));
  const std::vector<std::size_t> odd_users = {5, 6, 7, 8, 9, 15, 16, 17, 18, 19, 25, 26, 27, 28, 29};
  const Dataset view(shared, odd_users), other(shared, std::vector<std::size_t>{0, 1, 2});
  CHECK(view.columns().state.data() == shared->state.data());
  CHECK(other.columns().state.data() == shared->state.data());
  std::vector<TransitionRow> kept;
  for (std::size_t i : odd_users) kept.push_back(rows[i]);
  const Dataset copy(kept);
  std::vector<int> index;
  for (int k = 0; k < view.size(); ++k) index.push_back((k * 7) % view.size());
  Batch a, b, c;
  view.gather(index, a);
  copy.gather(index, b);
  const auto all_fields = {&Batch::state, &Batch::action, &Batch::reward, &Batch::next_state, &Batch::done,
                           &Batch::baseline, &Batch::lower, &Batch::upper, &Batch::has_bounds,
                           &Batch::next_baseline, &Batch::next_lower, &Batch::next_upper, &Batch::next_has_bounds};
  for (auto m : all_fields) CHECK(a.*m == b.*m);
  CHECK(view.normaliser().mean == copy.normaliser().mean);
  CHECK(view.normaliser().stddev == copy.normaliser().stddev);
  CHECK(view.initial_indices() == copy.initial_indices());
  // Exploration rounds append to the columns the datasets view: the views keep
  // their rows (the storage moved, the values did not).
  const TransitionColumns more = TransitionColumns::copy_of(Dataset(std::vector<TransitionRow>(200, row(9, 1, 0, 100.0f, true))).columns());
  shared->append(more);
  REQUIRE(shared->size() == 230);
  view.gather(index, c);
  CHECK(view.size() == 15);
  for (auto m : all_fields) CHECK(a.*m == c.*m);
}

TEST_CASE("inconsistent transitions are rejected with the row named") {
  std::vector<TransitionRow> rows = {row(1, 0, 0, 1, false), row(1, 0, 1, 3, true)};
  rows[1].action = {0.1f, 0.2f};
  CHECK_THROWS_WITH_AS(Dataset{rows}, doctest::Contains("transition 1.action has 2 values, expected 1"),
                       std::invalid_argument);
  CHECK_THROWS_AS(Dataset{std::vector<TransitionRow>{}}, std::invalid_argument);
  // Counts and groups beyond the columns' 16 bits: refused with the row named, not wrapped.
  rows[1].action = {0.1f};
  rows[1].counts.skips = 70000;
  CHECK_THROWS_WITH_AS(Dataset{rows}, doctest::Contains("transition 1: a request's skips count 70000"),
                       std::invalid_argument);
  rows[1].counts.skips = 0;
  rows[0].group = 40000;
  CHECK_THROWS_WITH_AS(Dataset{rows}, doctest::Contains("transition 0: transition group 40000"),
                       std::invalid_argument);
}

TEST_CASE("a dataset built from the simulator's columns equals the one built from the same rows") {
  // Columns of 2 users' sessions; some rows without baseline or bounds. The
  // selection skips rows and is out of order; the reward is recomputed.
  TransitionColumns c;
  c.state_dim = 2;
  c.action_dim = 1;
  std::vector<TransitionRow> all;
  for (int i = 0; i < 12; ++i) {
    TransitionRow t = row(i / 6, i / 3 % 2, i % 3, float(i), i % 3 == 2);
    t.log_density = i % 4 == 0 ? std::optional<double>(-0.5 * i) : std::nullopt;
    t.counts.valid = i;
    if (i % 5 == 1) t.baseline.clear();
    if (i % 4 == 3) t.lower.clear(), t.upper.clear();
    all.push_back(t);
    TransitionColumns::Row r;
    r.user = t.user;
    r.session = t.session;
    r.step = t.step;
    r.reward = t.reward;
    r.done = t.done;
    r.counts = RequestCounts::of(t.counts);
    if (t.log_density) r.log_density = *t.log_density;
    r.has_baseline = !t.baseline.empty();
    const float b = r.has_baseline ? t.baseline[0] : 7.0f;  // garbage where unknown
    c.push(r, t.state, t.action, t.next_state, {&b, 1}, t.lower, t.upper);
  }
  const std::vector<std::size_t> selection = {5, 0, 1, 2, 9, 4, 3, 11, 10};
  const auto reward = [](const TransitionColumns::Row& r) {
    return 0.5f * static_cast<float>(r.counts.valid);
  };
  std::vector<TransitionRow> rows;
  for (std::size_t i : selection) {
    rows.push_back(all[i]);
    rows.back().reward = 0.5f * static_cast<float>(all[i].counts.valid);
  }
  const Dataset from_rows(rows), from_columns(c, selection, reward);
  REQUIRE(from_columns.size() == from_rows.size());
  Batch a, b;
  std::vector<int> index(selection.size());
  for (std::size_t k = 0; k < index.size(); ++k) index[k] = static_cast<int>(k);
  from_rows.gather(index, a);
  from_columns.gather(index, b);
  for (auto m :
       {&Batch::state, &Batch::action, &Batch::reward, &Batch::next_state, &Batch::done,
        &Batch::baseline, &Batch::lower, &Batch::upper, &Batch::has_bounds, &Batch::next_baseline,
        &Batch::next_lower, &Batch::next_upper, &Batch::next_has_bounds})
    CHECK(a.*m == b.*m);
  CHECK(from_rows.normaliser().mean == from_columns.normaliser().mean);
  CHECK(from_rows.normaliser().stddev == from_columns.normaliser().stddev);
  CHECK(from_rows.initial_indices() == from_columns.initial_indices());
  CHECK(from_rows.has_bounds() == from_columns.has_bounds());
  for (std::size_t k = 0; k < selection.size(); ++k) {
    const double x = from_rows.log_densities()[k], y = from_columns.log_densities()[k];
    CHECK(((std::isnan(x) && std::isnan(y)) || x == y));
  }
  // Without a reward function the recorded rewards stand.
  const Dataset recorded(c, selection);
  CHECK(recorded.rewards()(0, 0) == all[5].reward);
  CHECK_THROWS_AS(Dataset(c, std::vector<std::size_t>{}), std::invalid_argument);
  CHECK_THROWS_AS(Dataset(c, std::vector<std::size_t>{12}), std::invalid_argument);
}

// Out of core (core/column_file.h): the columns written in chunks to files and
// memory-mapped give the in-memory dataset's minibatches, normalisation and,
// trained from the same seed, the same parameters bit for bit.
TEST_CASE("a dataset over mapped column files trains to the same bits as the columns in memory") {
  // Sessions of 1 to 5 requests over 40 users; some rows without bounds or baseline.
  std::vector<TransitionRow> rows;
  Rng rng(21);
  for (int u = 0; u < 40; ++u)
    for (int session = 0; session < (u % 10 == 0 ? 1 : 2); ++session) {  // users 0, 10, ... leave after a day
      const int len = 1 + (u + session) % 5;
      for (int step = 0; step < len; ++step) {
        TransitionRow t = row(u, session, step, static_cast<float>(rng.uniform01() * 4 - 2), step + 1 == len);
        t.state[1] = static_cast<float>(rng.uniform01());
        t.next_state[1] = static_cast<float>(rng.uniform01());
        t.action = {static_cast<float>(rng.uniform01() * 2 - 1)};
        t.time = 86400.0 * session + 900.0 * u + 20.0 * step + 30.0 * rng.uniform01();
        if (u % 7 == 3) t.lower.clear(), t.upper.clear();
        if (u % 6 == 2) t.baseline.clear();
        rows.push_back(t);
      }
    }
  const auto memory = std::make_shared<const TransitionColumns>(TransitionColumns::copy_of(Dataset(rows).columns()));
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "mtf_dataset_mapped_test";
  std::filesystem::remove_all(dir);
  {
    ColumnFileWriter writer(dir, memory->state_dim, memory->action_dim);
    for (std::size_t first = 0; first < memory->size(); first += 7) {  // chunks of 7 rows split sessions
      TransitionColumns chunk;
      chunk.state_dim = memory->state_dim;
      chunk.action_dim = memory->action_dim;
      for (std::size_t i = first; i < std::min(first + 7, memory->size()); ++i) chunk.push_row(memory->view(), i);
      writer.append(chunk);
    }
    writer.finish();
  }
  const auto mapped = std::make_shared<const MappedColumns>(dir);
  REQUIRE(mapped->size() == memory->size());
  // Every other user's rows: a selection, as a group filter makes.
  std::vector<std::size_t> selection;
  for (std::size_t i = 0; i < memory->size(); ++i)
    if (memory->rows[i].user % 2 == 0 || memory->rows[i].user == 9) selection.push_back(i);
  // The selected rows copied into column files of their own (as a run out of
  // core gives a dataset of some groups): all of the copy, in order.
  const auto copy = map_copy_of_rows(mapped->view(), selection, dir / "copy", 5);
  CHECK_FALSE(std::filesystem::exists(dir / "copy"));  // unlinked once mapped
  std::vector<std::size_t> all(selection.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  const Dataset in_memory(memory, selection), out_of_core(mapped, selection), own(copy, all);
  for (const Dataset* d : {&out_of_core, &own}) {
    CHECK(in_memory.normaliser().mean == d->normaliser().mean);
    CHECK(in_memory.normaliser().stddev == d->normaliser().stddev);
    CHECK(in_memory.initial_indices() == d->initial_indices());
    CHECK(in_memory.discounted_returns(0.9) == d->discounted_returns(0.9));
  }
  Rng r1(5), r2(5), r3(5);
  for (int k = 0; k < 20; ++k) {
    Batch a, b, c;
    in_memory.sample(r1, 32, a);
    out_of_core.sample(r2, 32, b);
    own.sample(r3, 32, c);
    for (auto m : {&Batch::state, &Batch::action, &Batch::reward, &Batch::next_state, &Batch::done, &Batch::baseline,
                   &Batch::lower, &Batch::upper, &Batch::has_bounds, &Batch::next_baseline, &Batch::next_lower,
                   &Batch::next_upper, &Batch::next_has_bounds}) {
      REQUIRE(a.*m == b.*m);
      REQUIRE(a.*m == c.*m);
    }
  }
  for (const std::string name : {"iql", "integratedrl_mtf", "bcq", "cql_sac"}) {
    CAPTURE(name);
    nlohmann::json hp = {{"hidden", {16, 16}}, {"batch_size", 24}};
    if (name == "integratedrl_mtf") hp["critics"] = 3;
    const auto a = make_agent(name, hp, in_memory.state_dim(), in_memory.action_dim(), 9);
    const auto b = make_agent(name, hp, out_of_core.state_dim(), out_of_core.action_dim(), 9);
    const auto c = make_agent(name, hp, own.state_dim(), own.action_dim(), 9);
    a->train(in_memory, 40);
    b->train(out_of_core, 40);
    c->train(own, 40);
    CHECK(mtf::agents::testing::param_bytes(*a) == mtf::agents::testing::param_bytes(*b));
    CHECK(mtf::agents::testing::param_bytes(*a) == mtf::agents::testing::param_bytes(*c));
  }
  // Users' sessions chained and discounted by the time between requests: the
  // same episodes, time-outs and discounts on the copy.
  Dataset chained(memory, selection, {}, Formulation::kCrossSession), chained_own(copy, all, {}, Formulation::kCrossSession);
  chained.discount_by_elapsed_time(600);
  chained_own.discount_by_elapsed_time(600);
  CHECK(chained.dones() == chained_own.dones());
  CHECK(chained.timeouts() == chained_own.timeouts());
  CHECK(chained.discount_steps() == chained_own.discount_steps());
  CHECK(chained.next_states() == chained_own.next_states());
  CHECK(chained.discounted_returns(0.9) == chained_own.discounted_returns(0.9));
  CHECK(chained.timeouts().sum() > 0);  // the formulation's cases occur
  CHECK(chained.dones().sum() > 0);
  CHECK(chained.discount_steps() != in_memory.discount_steps());
  CHECK_THROWS_AS(map_copy_of_rows(mapped->view(), std::vector<std::size_t>{memory->size()}, dir / "bad"),
                  std::invalid_argument);
  CHECK_FALSE(std::filesystem::exists(dir / "bad"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("cross-session: a session's end continues into the user's next session; done only where the user left") {
  // User 1: sessions 0 and 1 (a gap of 8 hours, held in state feature 1), its
  // last request 47 hours before the data's end: it left (terminal). User 2:
  // sessions 0 and 3 (1 and 2 were not selected), its last request the
  // data's last: the recording ended (time-out). User 3: two sessions 22 hours
  // apart, its last request 33 hours before the data's end: more than a day,
  // but within twice its own longest gap, so a time-out too.
  const auto at = [](TransitionRow r, double time, float gap) {
    r.time = time;
    r.state[1] = gap;
    return r;
  };
  const std::vector<TransitionRow> rows = {
      at(row(1, 0, 0, 0.0f, false), 0.0, 2.0f),         at(row(1, 0, 1, 1.0f, true), 100.0, 2.0f),
      at(row(1, 1, 0, 5.0f, false), 28900.0, 0.333f),   at(row(1, 1, 1, 6.0f, true), 29000.0, 0.333f),
      at(row(2, 0, 0, 10.0f, true), 150000.0, 2.0f),    at(row(2, 3, 0, 20.0f, false), 198000.0, 0.5f),
      at(row(2, 3, 1, 21.0f, true), 198100.0, 0.5f),
      at(row(3, 0, 0, 30.0f, true), 0.0, 2.0f),         at(row(3, 1, 0, 31.0f, true), 79200.0, 0.917f),
  };
  const Dataset session(rows);
  const Dataset cross(rows, Formulation::kCrossSession);
  CHECK(session.formulation() == Formulation::kSession);
  CHECK(cross.formulation() == Formulation::kCrossSession);
  const Matrix ns = cross.next_states(), d = cross.dones(), to = cross.timeouts();
  // Within a session both formulations agree.
  CHECK(ns.col(0) == session.next_states().col(0));
  CHECK(d(0, 0) == 0.0f);
  // A session's last request: s' is the next session's first state, gap included; not done.
  CHECK(ns(0, 1) == 5.0f);
  CHECK(ns(1, 1) == 0.333f);
  CHECK(d(0, 1) == 0.0f);
  CHECK(session.dones()(0, 1) == 1.0f);
  CHECK(session.next_states()(0, 1) == 2.0f);  // the recorded s' there
  // User 1's last request, long before the data's end: terminal.
  CHECK(d(0, 3) == 1.0f);
  CHECK(to(0, 3) == 0.0f);
  // User 2's session 0 continues into session 3 (the next one selected).
  CHECK(ns(0, 4) == 20.0f);
  CHECK(d(0, 4) == 0.0f);
  // User 2's last request, at the data's end: a time-out, bootstrapped from the recorded s'.
  CHECK(d(0, 6) == 0.0f);
  CHECK(to(0, 6) == 1.0f);
  CHECK(ns(0, 6) == 22.0f);
  // User 3: the first session continues; the last, 33 hours before the end, is a time-out.
  CHECK(ns(0, 7) == 31.0f);
  CHECK(d(0, 8) == 0.0f);
  CHECK(to(0, 8) == 1.0f);
  CHECK(to.sum() == 2.0f);
  CHECK(session.timeouts().sum() == 0.0f);
  // Minibatches agree with the whole columns, and the bounds at s' of a
  // crossing transition are those of the next session's first request.
  Batch b;
  cross.gather({1, 3, 4, 6}, b);
  CHECK(b.next_state.col(0) == ns.col(1));
  CHECK(b.next_state.col(2) == ns.col(4));
  CHECK(b.done(0, 0) == 0.0f);
  CHECK(b.done(0, 1) == 1.0f);
  CHECK(b.done(0, 3) == 0.0f);
  CHECK(b.next_baseline(0, 0) == doctest::Approx(0.0f));  // step 0 of session 1: baseline 0, not step 1's 0.1

  // Monte-Carlo returns (rewards are the states' first feature), gamma 0.5:
  // the session formulation stops at each session's end; the cross-session
  // one runs on to the user's terminal, or stops (truncated) at a time-out.
  const std::vector<double> gs = session.discounted_returns(0.5), gc = cross.discounted_returns(0.5);
  const std::vector<double> want_session = {0.5, 1, 8, 6, 10, 30.5, 21, 30, 31};
  const std::vector<double> want_cross = {2.5, 5, 8, 6, 25.25, 30.5, 21, 45.5, 31};
  REQUIRE(gs.size() == rows.size());
  for (std::size_t j = 0; j < rows.size(); ++j) {
    CAPTURE(j);
    CHECK(gs[j] == doctest::Approx(want_session[j]).epsilon(1e-12));
    CHECK(gc[j] == doctest::Approx(want_cross[j]).epsilon(1e-12));
  }
  // Gamma 0 is the reward itself; a view without user 1's second session
  // ends user 1's episode at its first session's end.
  const std::vector<double> g0 = cross.discounted_returns(0.0);
  for (std::size_t j = 0; j < rows.size(); ++j) CHECK(g0[j] == rows[j].reward);
  const std::vector<TransitionRow> without = {rows[0], rows[1], rows[4], rows[5], rows[6]};
  CHECK(Dataset(without, Formulation::kCrossSession).discounted_returns(0.5)[0] == doctest::Approx(0.5));
}

TEST_CASE("discounting by elapsed time: each transition's exponent is the time to its s' over the unit") {
  // The rows of the cross-session test above (times in seconds); the unit 8
  // hours. Cross-session: within a session the next request is 100 s on, the
  // chained gaps are 28,800 s (user 1), 48,000 s (user 2) and 79,200 s
  // (user 3); where the time of s' is not in the data (user 1's terminal,
  // the time-outs) the median of the chained gaps, 48,000 s, stands in.
  const auto at = [](TransitionRow r, double time) {
    r.time = time;
    return r;
  };
  const std::vector<TransitionRow> rows = {
      at(row(1, 0, 0, 0.0f, false), 0.0),      at(row(1, 0, 1, 1.0f, true), 100.0),
      at(row(1, 1, 0, 5.0f, false), 28900.0),  at(row(1, 1, 1, 6.0f, true), 29000.0),
      at(row(2, 0, 0, 10.0f, true), 150000.0), at(row(2, 3, 0, 20.0f, false), 198000.0),
      at(row(2, 3, 1, 21.0f, true), 198100.0), at(row(3, 0, 0, 30.0f, true), 0.0),
      at(row(3, 1, 0, 31.0f, true), 79200.0),
  };
  constexpr double kUnit = 28800.0;
  Dataset cross(rows, Formulation::kCrossSession);
  CHECK(cross.discount_unit_seconds() == 0.0);
  CHECK(cross.discount_steps() == Matrix::Ones(1, 9));
  Batch per_request;
  cross.gather({0, 1}, per_request);
  CHECK(per_request.steps.size() == 0);
  CHECK(continuation(0.9f, per_request)(0, 0) == 0.9f);
  const std::vector<double> g_request = cross.discounted_returns(0.5);

  cross.discount_by_elapsed_time(kUnit);
  CHECK(cross.discount_unit_seconds() == kUnit);
  const double w = 100.0 / kUnit, m = 48000.0 / kUnit;
  const std::vector<double> want_cross = {w, 1.0, w, m, m, w, m, 79200.0 / kUnit, m};
  const Matrix steps = cross.discount_steps();
  for (int j = 0; j < 9; ++j) {
    CAPTURE(j);
    CHECK(steps(0, j) == doctest::Approx(want_cross[static_cast<std::size_t>(j)]).epsilon(1e-6));
  }
  // Minibatches carry the exponents; the backup's factor is gamma^steps (1 - done).
  Batch b;
  cross.gather({1, 3, 4}, b);
  REQUIRE(b.steps.cols() == 3);
  CHECK(b.steps(0, 0) == steps(0, 1));
  CHECK(b.steps(0, 2) == steps(0, 4));
  const RowVector c = continuation(0.5f, b);
  CHECK(c(0) == doctest::Approx(0.5).epsilon(1e-6));              // 8 hours to user 1's next session
  CHECK(c(1) == 0.0f);                                            // user 1 left: terminal
  CHECK(c(2) == doctest::Approx(std::pow(0.5, m)).epsilon(1e-6));  // 48,000 s to user 2's next session

  // Monte-Carlo returns discount the same way (rewards: the states' first feature).
  const auto d = [&](std::size_t j) { return std::pow(0.5, static_cast<double>(steps(0, static_cast<int>(j)))); };
  std::vector<double> want(9);
  want[3] = 6;
  want[2] = 5 + d(2) * want[3];
  want[1] = 1 + d(1) * want[2];
  want[0] = 0 + d(0) * want[1];
  want[6] = 21;  // a time-out: truncated
  want[5] = 20 + d(5) * want[6];
  want[4] = 10 + d(4) * want[5];
  want[8] = 31;
  want[7] = 30 + d(7) * want[8];
  const std::vector<double> g = cross.discounted_returns(0.5);
  for (std::size_t j = 0; j < 9; ++j) {
    CAPTURE(j);
    CHECK(g[j] == doctest::Approx(want[j]).epsilon(1e-9));
  }
  // Within a session 100 s cost almost nothing at this unit: more than one
  // step of 0.5 per request leaves.
  CHECK(g[0] > g_request[0]);

  // The session formulation: session ends are done; with no chained gap in
  // the data they take a day.
  Dataset session(rows);
  session.discount_by_elapsed_time(kUnit);
  const Matrix ss = session.discount_steps();
  CHECK(ss(0, 0) == doctest::Approx(w).epsilon(1e-6));
  CHECK(ss(0, 1) == doctest::Approx(kTimeoutSeconds / kUnit).epsilon(1e-6));
  CHECK(session.dones()(0, 1) == 1.0f);

  for (const double bad : {0.0, -1.0, std::nan("")})
    CHECK_THROWS_WITH_AS(session.discount_by_elapsed_time(bad), doctest::Contains("finite number of seconds > 0"),
                         std::invalid_argument);
}
