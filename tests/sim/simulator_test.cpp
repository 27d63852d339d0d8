// The simulator: seed determinism, thread-count invariance, what it records,
// and the retrieval / multi-task model pipeline.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <atomic>
#include <map>
#include <tuple>
#include <numeric>

#include "results/recorder.h"
#include "sim/ranker.h"
#include "sim/state_features.h"
#include "test_world.h"

using namespace mtf;
namespace fs = std::filesystem;

namespace {

Scenario two_group_world(std::int64_t users, int days) {
  Scenario s = load_scenario(test::source_dir() / "scenarios" / "quickstart.json");
  s.population.size = users;
  s.days = days;
  return s;
}

RunContents run_to_db(const Scenario& s, int threads, int block_users, const fs::path& path,
                      RunResult* result = nullptr) {
  Simulator sim(s);
  {
    Recorder rec(path, sim.run_info("test", threads));
    RunOptions o;
    o.threads = threads;
    o.block_users = block_users;
    RunResult r = sim.run(o, &rec);
    rec.finish({}, 0.0);
    if (result) *result = std::move(r);
  }
  return read_run(path);
}

void require_same_summary(const RunResult& a, const RunResult& b) {
  REQUIRE(a.requests == b.requests);
  REQUIRE(a.sessions == b.sessions);
  REQUIRE(a.first_request_reward == b.first_request_reward);
  REQUIRE(a.groups.size() == b.groups.size());
  for (std::size_t g = 0; g < a.groups.size(); ++g) {
    const auto x = OnlineMetrics::rows(a.groups[g]), y = OnlineMetrics::rows(b.groups[g]);
    for (std::size_t m = 0; m < x.size(); ++m) {
      INFO(a.groups[g].name << "." << x[m].first);
      REQUIRE(x[m].second == y[m].second);  // bit-identical, not approximately equal
    }
  }
}

bool same_counts(const BehaviourCounts& a, const BehaviourCounts& b) {
  return a.shown == b.shown && a.plays == b.plays && a.valid == b.valid && a.finishes == b.finishes &&
         a.likes == b.likes && a.shares == b.shares && a.comments == b.comments && a.skips == b.skips &&
         a.watch_seconds == b.watch_seconds && a.dwell_seconds == b.dwell_seconds;
}

void require_identical(const RunContents& a, const RunContents& b) {
  REQUIRE(a.transitions.size() == b.transitions.size());
  REQUIRE(a.sessions.size() == b.sessions.size());
  REQUIRE(a.user_days.size() == b.user_days.size());
  for (std::size_t i = 0; i < a.transitions.size(); ++i) {
    const TransitionRow& x = a.transitions[i];
    const TransitionRow& y = b.transitions[i];
    REQUIRE(x.user == y.user);
    REQUIRE(x.session == y.session);
    REQUIRE(x.step == y.step);
    REQUIRE(x.time == y.time);
    REQUIRE(x.state == y.state);
    REQUIRE(x.action == y.action);
    REQUIRE(x.next_state == y.next_state);
    REQUIRE(x.reward == y.reward);
    REQUIRE(x.done == y.done);
    REQUIRE(x.group == y.group);
    REQUIRE(x.baseline == y.baseline);
    REQUIRE(x.lower == y.lower);
    REQUIRE(x.upper == y.upper);
    REQUIRE(x.log_density == y.log_density);
    REQUIRE(same_counts(x.counts, y.counts));
  }
  for (std::size_t i = 0; i < a.sessions.size(); ++i) {
    const SessionRow &x = a.sessions[i], &y = b.sessions[i];
    REQUIRE(x.user == y.user);
    REQUIRE(x.session == y.session);
    REQUIRE(x.group == y.group);
    REQUIRE(x.day == y.day);
    REQUIRE(x.start_time == y.start_time);
    REQUIRE(x.end_time == y.end_time);
    REQUIRE(x.requests == y.requests);
    REQUIRE(x.reward == y.reward);
    REQUIRE(same_counts(x.counts, y.counts));
  }
  for (std::size_t i = 0; i < a.user_days.size(); ++i) {
    const UserDayRow &x = a.user_days[i], &y = b.user_days[i];
    REQUIRE(x.user == y.user);
    REQUIRE(x.day == y.day);
    REQUIRE(x.group == y.group);
    REQUIRE(x.segment == y.segment);
    REQUIRE(x.sessions == y.sessions);
    REQUIRE(x.requests == y.requests);
    REQUIRE(x.reward == y.reward);
    REQUIRE(same_counts(x.counts, y.counts));
  }
}

}  // namespace

TEST_CASE("a run's records are identical for 1, 2 and 3 threads and any block size") {
  const Scenario s = two_group_world(1500, 2);
  const fs::path dir = fs::temp_directory_path() / "mtf_threads_test";
  fs::create_directories(dir);
  RunResult r1, r2, r3;
  const RunContents one = run_to_db(s, 1, 256, dir / "t1.sqlite", &r1);
  const RunContents two = run_to_db(s, 2, 256, dir / "t2.sqlite", &r2);
  const RunContents three = run_to_db(s, 3, 97, dir / "t3.sqlite", &r3);
  REQUIRE(one.transitions.size() > 1000);
  require_identical(one, two);
  require_identical(one, three);
  require_same_summary(r1, r2);
  require_same_summary(r1, r3);
  fs::remove_all(dir);
}

TEST_CASE("the same seed gives the same run and another seed a different one") {
  Scenario s = test::quickstart_world(800, 2);
  const RunResult a = test::run_policy(s, std::make_shared<BaselinePolicy>(s.fusion));
  const RunResult b = test::run_policy(s, std::make_shared<BaselinePolicy>(s.fusion));
  CHECK(a.requests == b.requests);
  CHECK(a.groups[0].reward_per_session == b.groups[0].reward_per_session);
  s.seed += 1;
  const RunResult c = test::run_policy(s, std::make_shared<BaselinePolicy>(s.fusion));
  CHECK(a.requests != c.requests);
}

TEST_CASE("transitions chain: next_state of a step is the state of the next step, done ends sessions") {
  const Scenario s = two_group_world(300, 2);
  const fs::path path = fs::temp_directory_path() / "mtf_chain_test.sqlite";
  const RunContents run = run_to_db(s, 2, 256, path);
  const auto& t = run.transitions;
  REQUIRE(t.size() > 100);
  int chained = 0;
  for (std::size_t i = 0; i + 1 < t.size(); ++i) {
    REQUIRE(t[i].state.size() == static_cast<std::size_t>(kStateDim));
    REQUIRE(t[i].action.size() == static_cast<std::size_t>(s.action_dim()));
    if (t[i].done) {
      // The next row starts a new session (or another user).
      CHECK((t[i + 1].user != t[i].user || t[i + 1].session != t[i].session));
      CHECK(t[i + 1].step == 0);
      continue;
    }
    REQUIRE(t[i + 1].user == t[i].user);
    REQUIRE(t[i + 1].step == t[i].step + 1);
    // The next request follows the feedback at once, so its state is next_state.
    CHECK(t[i].next_state == t[i + 1].state);
    ++chained;
  }
  CHECK(chained > 50);
  // So the columns read back keep s' at sessions' ends only.
  const TransitionColumns c = read_transition_columns(path);
  std::size_t ends = 0;
  for (const TransitionColumns::Row& r : c.rows) ends += r.done;
  CHECK(c.next_state_slots() == ends);
  // As the simulator hands them over: its batches store s' at sessions' ends only.
  Simulator again(s);
  RunOptions o;
  o.collect = true;
  std::size_t rows = 0, slots = 0, done = 0;
  o.on_batch = [&](const RecordBatch& b) {
    const TransitionColumns& tc = b.transition_columns;
    CHECK(tc.inconsistency().empty());
    rows += tc.size();
    slots += tc.next_state_slots();
    for (const TransitionColumns::Row& r : tc.rows) done += r.done;
  };
  again.run(o, nullptr);
  CHECK(rows == t.size());
  CHECK(slots == done);
  // Deterministic policies record their own action as mu_bp and no density.
  CHECK(t[0].baseline == t[0].action);
  CHECK_FALSE(t[0].log_density.has_value());
  // Sessions' rewards add up to their transitions' rewards.
  double from_transitions = 0, from_sessions = 0;
  for (const auto& x : t) from_transitions += x.reward;
  for (const auto& x : run.sessions) from_sessions += x.reward;
  CHECK(from_transitions == doctest::Approx(from_sessions).epsilon(1e-5));
  fs::remove(path);
}

TEST_CASE("retrieval draws each topic with the probability the interest bias gives it") {
  const Scenario s = test::quickstart_world(10, 1);
  const Catalogue cat(s.catalogue, s.seed);
  const UserModel model(s.user_model);
  const Ranker ranker(cat, s.retrieval, s.mtl, model);
  Ranker::Workspace ws;
  const int topics = cat.topics();
  std::vector<float> interests(topics);
  Rng pick(3);
  for (auto& x : interests) x = 0.05f + 0.95f * pick.uniform01();
  double total_w = 0;
  for (const float x : interests) total_w += static_cast<double>(x) * x;
  std::vector<int> seen(topics, 0);
  Rng rng(11);
  int total = 0;
  for (int r = 0; r < 500; ++r) {
    ranker.retrieve(interests, rng, ws);
    for (int i = 0; i < ranker.candidates(); ++i) {
      ++seen[cat.topic[ws.items[i]]];
      ++total;
    }
  }
  // P(topic t) = bias * interest_t^2 / sum(interest^2) + (1 - bias) / topics.
  double chi2 = 0;
  const double bias = s.retrieval.interest_bias;
  for (int t = 0; t < topics; ++t) {
    const double p = bias * interests[t] * interests[t] / total_w + (1 - bias) / topics;
    const double expected = p * total;
    chi2 += (seen[t] - expected) * (seen[t] - expected) / expected;
  }
  // 23 degrees of freedom: the 0.999 quantile of chi-square(23) is 49.7.
  CHECK(chi2 < 49.7);
  // Items within a topic are (close to) uniform: every item of a topic appears.
  std::vector<int> hits(cat.size(), 0);
  for (int r = 0; r < 2000; ++r) {
    ranker.retrieve(interests, rng, ws);
    for (int i = 0; i < ranker.candidates(); ++i) ++hits[ws.items[i]];
  }
  int never = 0;
  for (int h : hits) never += h == 0;
  CHECK(never < cat.size() / 100);
}

TEST_CASE("the multi-task model's predictions track the truth but are not the truth") {
  Scenario s = test::quickstart_world(10, 1);
  const Catalogue cat(s.catalogue, s.seed);
  const UserModel model(s.user_model);
  const Ranker ranker(cat, s.retrieval, s.mtl, model);
  Ranker::Workspace ws;
  std::vector<float> interests(cat.topics(), 0.3f);
  Rng rng(5);
  ranker.retrieve(interests, rng, ws);
  const ResponseCoeffs k = model.coeffs(UserProfile{}, UserState{});
  ranker.predict(k, 42, interests, ws);
  // True play probability of each candidate.
  std::vector<double> truth, pred;
  for (int i = 0; i < ranker.candidates(); ++i) {
    const int it = ws.items[i];
    ResponseLogits<float> l;
    response_logits(k, interests[cat.topic[it]], cat.dur_feature[it],
                    item_terms(k, cat.clickbait[it], cat.quality[it], cat.appeal[it]), l);
    truth.push_back(1.0 / (1.0 + std::exp(-l.play)));
    pred.push_back(ws.pred[0][i]);
  }
  const auto corr = [](const std::vector<double>& x, const std::vector<double>& y) {
    const double mx = std::accumulate(x.begin(), x.end(), 0.0) / x.size();
    const double my = std::accumulate(y.begin(), y.end(), 0.0) / y.size();
    double sxy = 0, sxx = 0, syy = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      sxy += (x[i] - mx) * (y[i] - my);
      sxx += (x[i] - mx) * (x[i] - mx);
      syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / std::sqrt(sxx * syy);
  };
  const double c = corr(truth, pred);
  CHECK(c > 0.8);   // informative
  CHECK(c < 0.999); // but noisy
  // The error of a (user, item, task) is fixed: asking again gives the same prediction.
  const float first = ws.pred[0][0];
  ranker.predict(k, 42, interests, ws);
  CHECK(ws.pred[0][0] == first);
  // Every probability task is a probability.
  for (int t = 0; t < kNumTasks; ++t) {
    if (t == static_cast<int>(Task::kWatchTime)) continue;
    CHECK(ws.pred[t].head(ranker.candidates()).minCoeff() >= 0.0f);
    CHECK(ws.pred[t].head(ranker.candidates()).maxCoeff() <= 1.0f);
  }
}

TEST_CASE("the top list holds distinct items in descending score order") {
  const Scenario s = test::quickstart_world(10, 1);
  const Catalogue cat(s.catalogue, s.seed);
  const UserModel model(s.user_model);
  const Ranker ranker(cat, s.retrieval, s.mtl, model);
  Ranker::Workspace ws;
  std::vector<float> interests(cat.topics(), 0.1f);
  interests[0] = 1.0f;
  Rng rng(3);
  ranker.retrieve(interests, rng, ws);
  for (int i = 0; i < ranker.candidates(); ++i) ws.score[i] = static_cast<float>((i * 37) % 101);
  ws.items[5] = ws.items[6];  // force a duplicate among the best
  ws.score[5] = 1000.0f;
  ws.score[6] = 999.0f;
  ws.score[7] = std::nanf("");
  std::vector<int> top(s.retrieval.shown);
  REQUIRE(ranker.select_top(ws, top) == s.retrieval.shown);
  CHECK(top[0] == 5);
  for (std::size_t a = 0; a < top.size(); ++a) {
    CHECK(top[a] != 6);
    CHECK(top[a] != 7);
    if (a > 0) CHECK(ws.score[top[a - 1]] >= ws.score[top[a]]);
    for (std::size_t b = a + 1; b < top.size(); ++b) CHECK(ws.items[top[a]] != ws.items[top[b]]);
  }
}

TEST_CASE("groups are assigned by a seeded hash in proportion to their shares") {
  std::vector<GroupSpec> groups(3);
  groups[0].share = 1;
  groups[1].share = 1;
  groups[2].share = 2;
  std::vector<int> n(3, 0);
  for (int u = 0; u < 40000; ++u) ++n[assign_group(9, u, groups)];
  // 40,000 users: standard error of a share about 0.0025.
  CHECK(std::abs(n[0] / 40000.0 - 0.25) < 0.01);
  CHECK(std::abs(n[2] / 40000.0 - 0.5) < 0.01);
  // Membership is a function of (seed, user) alone: another seed reshuffles it.
  int moved = 0;
  for (int u = 0; u < 1000; ++u) moved += assign_group(9, u, groups) != assign_group(10, u, groups);
  CHECK(moved > 400);  // independent draws agree with probability 0.25^2 + 0.25^2 + 0.5^2 = 0.375
}

TEST_CASE("the topic graph is connected") {
  const TopicGraph g(24, 4, 7);
  const std::vector<int> d = g.distances_from(0);
  for (int t = 1; t < 24; ++t) CHECK(d[t] > 0);
  for (int t = 0; t < 24; ++t) CHECK(g.degree(t) >= 4);
}

TEST_CASE("the AVX-512 ranking paths and the portable scalar code give identical lists") {
  const Scenario s = test::quickstart_world(10, 1);
  const Catalogue cat(s.catalogue, s.seed);
  const UserModel model(s.user_model);
  Ranker fast(cat, s.retrieval, s.mtl, model);
  Ranker portable(cat, s.retrieval, s.mtl, model);
  portable.force_scalar(true);
  Ranker::Workspace a, b;
  std::vector<float> interests(cat.topics());
  Rng pick(8);
  std::vector<float> action(s.action_dim());
  for (int r = 0; r < 50; ++r) {
    for (auto& x : interests) x = 0.02f + pick.uniform01();
    for (auto& x : action) x = 2.0f * pick.uniform01() - 1.0f;
    const FusionWeights w = weights_from_action(s.fusion, action);
    UserState state;
    state.fatigue = pick.uniform01();
    const ResponseCoeffs k = model.coeffs(UserProfile{}, state);
    Rng ra(100 + r), rb(100 + r);
    fast.retrieve(interests, ra, a);
    portable.retrieve(interests, rb, b);
    REQUIRE(std::equal(a.items.begin(), a.items.begin() + fast.candidates(), b.items.begin()));
    fast.predict(k, 7, interests, a);
    portable.predict(k, 7, interests, b);
    fast.fuse(w, a);
    portable.fuse(w, b);
    for (int i = 0; i < fast.candidates(); ++i) REQUIRE(a.score[i] == b.score[i]);
    if (r % 2 == 1) {  // hard inputs for the selection: ties, NaN, infinities, duplicate items
      for (int i = 0; i < fast.candidates(); i += 3) a.score[i] = b.score[i] = std::round(a.score[i]);
      for (int i = 1; i < fast.candidates(); i += 17) a.score[i] = b.score[i] = std::nanf("");
      a.score[5] = b.score[5] = INFINITY;
      a.score[6] = b.score[6] = -INFINITY;
      for (int i = 0; i + 1 < fast.candidates(); i += 11) a.items[i + 1] = b.items[i + 1] = a.items[i];
    }
    std::vector<int> ta(s.retrieval.shown), tb(s.retrieval.shown);
    REQUIRE(fast.select_top(a, ta) == portable.select_top(b, tb));
    CHECK(ta == tb);
  }
#if !defined(__AVX512F__)
  MESSAGE("this build has no AVX-512: both rankers ran the portable code");
#endif
}

TEST_CASE("days run in pieces equal the days run at once; per-user totals add up to the groups") {
  const Scenario s = two_group_world(3000, 3);
  Simulator whole(s);
  RunOptions o;
  o.threads = 2;
  const RunResult all = whole.run(o, nullptr);

  Simulator pieces(s);
  pieces.track_user_totals(true);
  BehaviourCounts sum_days;
  std::int64_t requests = 0;
  for (int d = 0; d < 3; ++d) {
    const RunResult r = pieces.run_days(1, o, nullptr);
    requests += r.requests;
    for (int g = 0; g < r.metrics.groups(); ++g) {
      REQUIRE(same_counts(r.metrics.at(g, 0).counts, all.metrics.at(g, d).counts));
      sum_days += r.metrics.at(g, 0).counts;
    }
  }
  CHECK(requests == all.requests);
  CHECK_THROWS_AS(pieces.run_days(1, o, nullptr), std::logic_error);  // past the scenario's days
  CHECK_THROWS_AS(pieces.run(o, nullptr), std::logic_error);

  // Per-user totals: their sum is the groups' sum; active-day bits match the DAU.
  BehaviourCounts sum_users;
  std::int64_t active_user_days = 0, all_active = 0;
  for (const UserTotals& t : pieces.user_totals()) {
    sum_users += t.counts;
    active_user_days += std::popcount(t.active_days);
  }
  for (int g = 0; g < all.metrics.groups(); ++g)
    for (int d = 0; d < 3; ++d) all_active += all.metrics.at(g, d).active;
  CHECK(sum_users.valid == sum_days.valid);
  CHECK(sum_users.plays == sum_days.plays);
  CHECK(sum_users.watch_seconds == doctest::Approx(sum_days.watch_seconds).epsilon(1e-12));
  CHECK(active_user_days == all_active);
}

TEST_CASE("a user's chained return discounts the user's requests in order across sessions and days") {
  // UserTotals::chained_return, accumulated over three days run one at a time,
  // against sum_n gamma^n r_n recomputed from the recorded transitions of each
  // user in time order (their rewards are stored as floats); and
  // chained_session_return against the same sum from each start of a session
  // on the first day, added over those sessions (recomputed the slow way,
  // start by start), and its carry against the weight cut off at the end. (A
  // session runs to its end within the day that starts it, so "the day" of a
  // request is the day of the run_days call that recorded it.)
  const Scenario s = two_group_world(1500, 3);
  Simulator sim(s);
  sim.track_user_totals(true);
  sim.set_return_gamma(0.9);
  RunOptions o;
  o.threads = 2;
  o.collect = true;
  std::map<std::int64_t, std::vector<std::tuple<double, float, int, int>>> requests;  // user -> (time, reward, step, day)
  int day = 0;
  o.on_batch = [&](const RecordBatch& b) {
    for (const TransitionColumns::Row& r : b.transition_columns.rows)
      requests[r.user].emplace_back(r.time, r.reward, r.step, day);
  };
  for (day = 0; day < 3; ++day) sim.run_days(1, o, nullptr);
  REQUIRE(requests.size() > 500);
  int spanning = 0, later_starts = 0;
  for (auto& entry : requests) {  // not a structured binding: clang before 16 cannot capture one in INFO
    const std::int64_t user = entry.first;
    auto& v = entry.second;
    INFO(user);
    std::sort(v.begin(), v.end());
    double chained = 0, undiscounted = 0, g = 1, per_session = 0, cut_off = 0;
    int starts = 0;
    for (const auto& [time, r, step, d] : v) {
      chained += g * r;
      undiscounted += r;
      g *= 0.9;
    }
    for (std::size_t j0 = 0; j0 < v.size(); ++j0) {
      if (std::get<2>(v[j0]) != 0 || std::get<3>(v[j0]) != 0) continue;
      ++starts;
      double from = 0, w = 1;
      for (std::size_t n = j0; n < v.size(); ++n, w *= 0.9) from += w * std::get<1>(v[n]);
      per_session += from;
      cut_off += w;
    }
    const UserTotals& t = sim.user_totals()[static_cast<std::size_t>(user)];
    CHECK(t.chained_return == doctest::Approx(chained).epsilon(1e-5));
    CHECK(t.chained_session_return == doctest::Approx(per_session).epsilon(1e-5));
    CHECK(t.chained_session_weight == doctest::Approx(cut_off).epsilon(1e-9));
    CHECK(t.first_day_sessions == starts);
    later_starts += t.sessions > starts;
    CHECK(t.reward == doctest::Approx(undiscounted).epsilon(1e-5));
    spanning += t.sessions > 1 && std::popcount(t.active_days) > 1;
  }
  CHECK(spanning > 100);     // the chaining crossed sessions and days
  CHECK(later_starts > 100);  // and later days' sessions were left out
  // Users who never made a request have nothing to chain.
  std::int64_t idle = 0;
  for (std::size_t u = 0; u < sim.user_totals().size(); ++u)
    if (!requests.count(static_cast<std::int64_t>(u))) {
      ++idle;
      CHECK(sim.user_totals()[u].chained_return == 0.0);
      CHECK(sim.user_totals()[u].chained_session_return == 0.0);
    }
  CHECK(idle > 0);
}

TEST_CASE("a simulator restored from a saved state continues as the original does, to the bit") {
  const Scenario s = two_group_world(2000, 3);
  RunOptions o;
  o.threads = 2;
  Simulator original(s);
  original.track_user_totals(true);
  original.run_days(1, o, nullptr);
  const std::string saved = original.save_state();
  const RunResult rest = original.run_days(2, o, nullptr);

  Simulator restored(s);  // a fresh process would build this one
  restored.restore_state(saved);
  CHECK(restored.days_done() == 1);
  const RunResult again = restored.run_days(2, o, nullptr);
  CHECK(again.requests == rest.requests);
  for (int g = 0; g < rest.metrics.groups(); ++g)
    for (int d = 0; d < 2; ++d) CHECK(same_counts(again.metrics.at(g, d).counts, rest.metrics.at(g, d).counts));
  CHECK(restored.save_state() == original.save_state());  // every user's state and total

  // Without per-user totals (the online learners' simulators) too: nothing is
  // copied to or from the empty totals (their data() may be null; UBSan).
  Simulator plain(s), plain_restored(s);
  plain.run_days(1, o, nullptr);
  plain_restored.restore_state(plain.save_state());
  CHECK(plain_restored.save_state() == plain.save_state());
  CHECK(plain_restored.user_totals().empty());

  // Bytes that do not fit are refused.
  Simulator other(two_group_world(1999, 3));
  CHECK_THROWS_AS(other.restore_state(saved), std::invalid_argument);
  // So is a state of the format before the chained return per session (version 3), whole.
  std::string older = saved;
  older[7] = '3';
  Simulator fresh(s);
  CHECK_THROWS_AS(fresh.restore_state(older), std::invalid_argument);
  CHECK(fresh.days_done() == 0);
  CHECK_THROWS_AS(restored.restore_state(saved.substr(0, saved.size() - 1)), std::invalid_argument);
  CHECK_THROWS_AS(restored.restore_state("not a state"), std::invalid_argument);
}

TEST_CASE("a policy replaced between days takes effect from the next day only") {
  const Scenario s = two_group_world(2000, 2);
  RunOptions o;
  Simulator a(s), b(s);
  const RunResult a0 = a.run_days(1, o, nullptr);
  const RunResult b0 = b.run_days(1, o, nullptr);
  REQUIRE(same_counts(a0.metrics.at(1, 0).counts, b0.metrics.at(1, 0).counts));
  // Group 1 of b switches to group 0's constant policy: its second day changes,
  // group 0's does not.
  b.set_policy(1, b.policies()[0]);
  const RunResult a1 = a.run_days(1, o, nullptr);
  const RunResult b1 = b.run_days(1, o, nullptr);
  CHECK(same_counts(a1.metrics.at(0, 0).counts, b1.metrics.at(0, 0).counts));
  CHECK_FALSE(same_counts(a1.metrics.at(1, 0).counts, b1.metrics.at(1, 0).counts));
  CHECK_THROWS_AS(b.set_policy(5, b.policies()[0]), std::out_of_range);
}

TEST_CASE("impressions: one row per shown item of the flagged groups, with the item's own reward") {
  const Scenario s = two_group_world(600, 1);
  Simulator sim(s);
  sim.set_impression_groups({false, true});
  std::vector<ImpressionRow> imps;
  std::vector<TransitionRow> dummy;
  std::int64_t shown_g1 = 0;
  double reward_g1 = 0;
  RunOptions o;
  o.collect = true;
  o.on_batch = [&](const RecordBatch& b) {
    imps.insert(imps.end(), b.impressions.begin(), b.impressions.end());
    for (std::size_t i = 0; i < b.transition_columns.size(); ++i) {
      const auto& row = b.transition_columns.rows[i];
      if (row.group == 1) {
        shown_g1 += row.counts.shown;
        reward_g1 += row.reward;
      }
    }
  };
  sim.run(o, nullptr);
  REQUIRE(!imps.empty());
  CHECK(static_cast<std::int64_t>(imps.size()) == shown_g1);
  double sum = 0;
  for (const ImpressionRow& r : imps) {
    REQUIRE(r.group == 1);
    REQUIRE(r.position < s.retrieval.shown);
    for (int t = 0; t < kNumTasks; ++t) {
      INFO("task " << kTaskNames[t] << " pred " << r.pred[t]);
      if (t == static_cast<int>(Task::kWatchTime)) REQUIRE(r.pred[t] >= 0.0f);  // minutes
      else REQUIRE((r.pred[t] >= 0.0f && r.pred[t] <= 1.0f));
    }
    sum += r.reward;
  }
  // Formula 2 is linear in the behaviours: item rewards add up to the request rewards.
  CHECK(sum == doctest::Approx(reward_g1).epsilon(1e-4));
}

namespace {

/// Wraps a policy and acts on a batch's rows in reverse order (allowed: rows are
/// independent, each with its own stream), noting the largest batch it saw.
class ReversedBatchPolicy final : public Policy {
 public:
  explicit ReversedBatchPolicy(PolicyPtr base) : base_(std::move(base)) {}
  std::string name() const override { return base_->name(); }
  int action_dim() const override { return base_->action_dim(); }
  void act(std::span<const float> state, std::span<float> action, Rng& rng, ActionInfo* info) const override {
    base_->act(state, action, rng, info);
  }
  void act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                 std::span<ActionInfo* const> infos) const override {
    const std::size_t n = rngs.size();
    std::size_t seen = largest_.load();
    while (n > seen && !largest_.compare_exchange_weak(seen, n)) {
    }
    const std::size_t S = states.size() / n, d = actions.size() / n;
    for (std::size_t i = n; i-- > 0;)
      base_->act(states.subspan(i * S, S), actions.subspan(i * d, d), *rngs[i], infos.empty() ? nullptr : infos[i]);
  }
  std::size_t largest_batch() const { return largest_.load(); }

 private:
  PolicyPtr base_;
  mutable std::atomic<std::size_t> largest_{0};
};

}  // namespace

TEST_CASE("the simulator asks policies for batches of waiting users, and the rows' order in a batch does not matter") {
  Scenario s = two_group_world(1200, 2);
  s.groups[1].policy.kind = PolicyKind::kBoundedUniform;
  s.groups[1].policy.json = R"({"type":"bounded_uniform","bound":0.15})";
  std::vector<PolicyPtr> plain, reversed;
  for (const GroupSpec& g : s.groups) plain.push_back(make_policy(g.policy, s));
  std::vector<std::shared_ptr<const ReversedBatchPolicy>> wrappers;
  for (const PolicyPtr& p : plain) {
    wrappers.push_back(std::make_shared<const ReversedBatchPolicy>(p));
    reversed.push_back(wrappers.back());
  }
  auto collect = [&](std::vector<PolicyPtr> policies) {
    Simulator sim(s, std::move(policies));
    RunOptions o;
    o.threads = 2;
    o.collect = true;
    std::vector<float> actions;
    o.on_batch = [&](const RecordBatch& b) {
      actions.insert(actions.end(), b.transition_columns.action.begin(), b.transition_columns.action.end());
    };
    const RunResult r = sim.run(o, nullptr);
    return std::make_pair(r.requests, actions);
  };
  const auto want = collect(plain), got = collect(reversed);
  CHECK(want.first == got.first);
  CHECK(want.second == got.second);
  for (const auto& w : wrappers) CHECK(w->largest_batch() > 1);
}

namespace {

/// The quickstart world whose users never choose to leave: patience at its
/// maximum and a leave hazard of sigmoid(-110) whatever happens.
Scenario endless_world(std::int64_t users) {
  Scenario s = test::quickstart_world(users, 1);
  for (SegmentParams& seg : s.population.segments) seg.patience = 10;
  s.user_model.leave_bias = -100;
  s.user_model.leave_satisfaction = 0;
  s.user_model.leave_fatigue = 0;
  s.user_model.leave_requests = 0;
  return s;
}

/// Runs the scenario with its own policies and collects the session rows.
RunResult run_collecting_sessions(const Scenario& s, std::vector<SessionRow>& sessions) {
  Simulator sim(s);
  RunOptions o;
  o.threads = 2;
  o.collect = true;
  o.on_batch = [&](const RecordBatch& b) { sessions.insert(sessions.end(), b.sessions.begin(), b.sessions.end()); };
  return sim.run(o, nullptr);
}

}  // namespace

TEST_CASE("a scenario whose users never leave finishes, every session ended by a cap and counted") {
  const Scenario s = endless_world(40);
  std::vector<SessionRow> sessions;
  const RunResult r = run_collecting_sessions(s, sessions);
  REQUIRE(r.sessions > 0);
  CHECK(r.sessions_capped == r.sessions);
  CHECK(r.groups.at(0).sessions_capped == r.sessions);
  REQUIRE(static_cast<std::int64_t>(sessions.size()) == r.sessions);
  for (const SessionRow& x : sessions) {
    // Either cap ended it: 400 requests, or 24 simulated hours.
    CHECK(x.requests <= 400);
    CHECK((x.requests == 400 || x.end_time - x.start_time >= 24 * 3600.0));
  }
  const auto rows = OnlineMetrics::rows(r.groups.at(0));
  const auto it = std::find_if(rows.begin(), rows.end(), [](const auto& p) { return p.first == "sessions_capped"; });
  REQUIRE(it != rows.end());
  CHECK(it->second == static_cast<double>(r.sessions));
}

TEST_CASE("a lowered request cap ends sessions at that many requests and counts them") {
  Scenario s = test::quickstart_world(400, 1);
  s.limits.max_session_requests = 3;
  std::vector<SessionRow> sessions;
  const RunResult r = run_collecting_sessions(s, sessions);
  std::int64_t at_cap = 0;
  for (const SessionRow& x : sessions) {
    CHECK(x.requests <= 3);
    at_cap += x.requests == 3;
  }
  CHECK(at_cap > 0);
  CHECK(r.sessions_capped == at_cap);  // the cap is checked before the user's own choice
  CHECK(r.groups.at(0).sessions_capped == at_cap);
}

TEST_CASE("a lowered session-time cap ends sessions after that much simulated time") {
  Scenario s = endless_world(40);
  s.limits.max_session_hours = 0.05;  // three minutes
  std::vector<SessionRow> sessions;
  const RunResult r = run_collecting_sessions(s, sessions);
  REQUIRE(r.sessions > 0);
  CHECK(r.sessions_capped == r.sessions);
  for (const SessionRow& x : sessions) {
    CHECK(x.end_time - x.start_time >= 180.0);
    CHECK(x.requests < 400);
  }
}

TEST_CASE("the default caps never bind on the quickstart world: results equal those without caps") {
  const Scenario s = two_group_world(3000, 2);
  Scenario loose = s;
  loose.limits.max_session_requests = 100000;
  loose.limits.max_session_hours = 720;
  RunOptions o;
  o.threads = 2;
  Simulator a(s), b(loose);
  const RunResult x = a.run(o, nullptr), y = b.run(o, nullptr);
  CHECK(x.sessions_capped == 0);
  for (const GroupSummary& g : x.groups) CHECK(g.sessions_capped == 0);
  require_same_summary(x, y);
}

TEST_CASE("a stepper given the policy's actions replays a run's users to the bit, across days") {
  // The baseline policy acts on the state, so the stepped users see the run's
  // states only if every request, reward and session end is the run's.
  const Scenario s = test::quickstart_world(600, 3);
  const BaselinePolicy policy(s.fusion);
  TransitionColumns run;
  run.state_dim = kStateDim;
  run.action_dim = s.action_dim();
  std::map<std::pair<std::int64_t, int>, double> day_reward;
  {
    Simulator sim(s, {std::make_shared<BaselinePolicy>(s.fusion)});
    RunOptions o;
    o.threads = 2;
    o.collect = true;
    o.on_batch = [&](const RecordBatch& b) {
      run.append(b.transition_columns);
      for (const UserDayRow& r : b.user_days) day_reward[{r.user, r.day}] = r.reward;
    };
    sim.run(o, nullptr);
  }
  const std::vector<std::int64_t> users = {0, 3, 4, 10, 17, 42, 99, 250, 599};
  Simulator sim(s, {std::make_shared<BaselinePolicy>(s.fusion)});
  Simulator::Stepper stepper(sim, users);
  REQUIRE(stepper.size() == users.size());
  CHECK_THROWS_AS(sim.run(RunOptions{}, nullptr), std::logic_error);
  const std::size_t S = kStateDim, d = static_cast<std::size_t>(s.action_dim());
  std::vector<float> action(d);
  Rng rng(1);
  std::size_t compared = 0, ends = 0;
  for (std::size_t k = 0; k < users.size(); ++k) {
    std::vector<std::size_t> rows;  // the run's rows of this user, in time order
    for (std::size_t i = 0; i < run.size(); ++i)
      if (run.rows[i].user == users[k]) rows.push_back(i);
    REQUIRE(!rows.empty());
    std::map<int, double> totals;
    for (const std::size_t i : rows) {
      const Simulator::Stepper::Request req = stepper.request(k);
      const TransitionColumns::Row& row = run.rows[i];
      REQUIRE(req.user == users[k]);
      REQUIRE(req.session == row.session);
      REQUIRE(req.step == row.step);
      REQUIRE(req.time == row.time);
      const std::span<const float> state = stepper.state(k);
      REQUIRE(std::memcmp(state.data(), run.state.data() + i * S, S * sizeof(float)) == 0);
      policy.act(state, action, rng, nullptr);
      const Simulator::Stepper::Outcome o = stepper.step(k, action);
      REQUIRE(static_cast<float>(o.reward) == row.reward);
      REQUIRE(o.done == row.done);
      REQUIRE(std::memcmp(o.next_state.data(), run.next_state_of(i).data(), S * sizeof(float)) == 0);
      totals[req.day] += o.reward;  // in request order, as the run sums them
      ++compared;
      ends += o.done;
    }
    for (const auto& [day, total] : totals) CHECK(total == day_reward.at({users[k], day}));
    // Past the run's days the user goes on: the stepper's calendar does not end.
    CHECK(stepper.request(k).day >= s.days);
  }
  CHECK(compared > 100);
  CHECK(ends > users.size());
}

TEST_CASE("a stepper refuses a used simulator, bad users and a scenario without transitions") {
  Scenario s = test::quickstart_world(50, 1);
  Simulator used(s, {std::make_shared<BaselinePolicy>(s.fusion)});
  used.run(RunOptions{}, nullptr);
  CHECK_THROWS_AS(Simulator::Stepper(used, {0}), std::logic_error);
  Simulator sim(s, {std::make_shared<BaselinePolicy>(s.fusion)});
  CHECK_THROWS_AS(Simulator::Stepper(sim, {}), std::invalid_argument);
  CHECK_THROWS_AS(Simulator::Stepper(sim, {50}), std::invalid_argument);
  CHECK_THROWS_AS(Simulator::Stepper(sim, {3, 3}), std::invalid_argument);
  s.record.transitions = false;
  Simulator quiet(s, {std::make_shared<BaselinePolicy>(s.fusion)});
  CHECK_THROWS_AS(Simulator::Stepper(quiet, {0}), std::logic_error);
}
