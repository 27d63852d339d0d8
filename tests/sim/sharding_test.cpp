// Sharding the users over ranks (RunOptions::cluster) gives one process's
// results. The ranks here are threads joined by an in-process Cluster, so the
// sharding logic is tested in every build; tests/mpi_test.sh runs the same
// comparison under mpirun when the build has MPI.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cluster.h"
#include "sim/policies.h"
#include "users/population.h"
#include "../core/local_ranks.h"
#include "test_world.h"

using namespace mtf;

namespace {

/// What one rank (or the one process) saw.
struct Seen {
  std::vector<RunResult> results;  // one per run_days call
  TransitionColumns transitions;
  std::vector<SessionRow> sessions;
  std::vector<UserDayRow> user_days;
  std::vector<ImpressionRow> impressions;
  std::vector<UserTotals> totals;
  std::string state;
  std::string error;
};

Scenario world(std::int64_t users, int days) {
  Scenario s = load_scenario(test::source_dir() / "scenarios" / "quickstart.json");
  s.population.size = users;
  s.days = days;
  return s;
}

/// Runs `s` in pieces of `pieces` days; collects rows when `collect`.
/// `sharded`: each rank holds only its users (UserSharding); `restore`: the
/// simulator starts from this saved state.
Seen run(const Scenario& s, const std::vector<int>& pieces, int threads, int block, bool collect,
         const Cluster* cluster, std::vector<PolicyPtr> policies = {}, bool sharded = false,
         const std::string& restore = {}) {
  Seen seen;
  seen.transitions.state_dim = kStateDim;
  seen.transitions.action_dim = s.action_dim();
  try {
    Simulator sim(s, std::move(policies), 0, sharded ? UserSharding{cluster, block} : UserSharding{});
    if (!restore.empty()) sim.restore_state(restore);
    sim.set_impression_groups({true, false});
    sim.track_user_totals(true);
    RunOptions o;
    o.threads = threads;
    o.block_users = block;
    o.cluster = cluster;
    o.collect = collect;
    if (collect)
      o.on_batch = [&](const RecordBatch& b) {
        seen.transitions.append(b.transition_columns);
        seen.sessions.insert(seen.sessions.end(), b.sessions.begin(), b.sessions.end());
        seen.user_days.insert(seen.user_days.end(), b.user_days.begin(), b.user_days.end());
        seen.impressions.insert(seen.impressions.end(), b.impressions.begin(), b.impressions.end());
      };
    for (const int d : pieces) seen.results.push_back(sim.run_days(d, o, nullptr));
    seen.totals = sim.user_totals();
    seen.state = sim.save_state();
  } catch (const std::exception& e) {
    seen.error = e.what();
  }
  return seen;
}

/// Runs `ranks` ranks as threads; rank r collects rows when collect(r).
std::vector<Seen> run_ranks(const Scenario& s, int ranks, const std::vector<int>& pieces, int threads, int block,
                            const std::function<bool(int)>& collect,
                            const std::function<std::vector<PolicyPtr>(int)>& policies = {}, bool sharded = false,
                            const std::string& restore = {}) {
  return testing::on_local_ranks(ranks, [&](int r, const Cluster& cl) {
    return run(s, pieces, threads, block, collect(r), &cl, policies ? policies(r) : std::vector<PolicyPtr>{}, sharded,
               restore);
  });
}

/// `with_state`: b's saved state is compared too (a sharded simulator's is on rank 0 only).
void require_same_results(const Seen& a, const Seen& b, bool with_state = true) {
  REQUIRE(a.error == "");
  REQUIRE(b.error == "");
  REQUIRE(a.results.size() == b.results.size());
  for (std::size_t i = 0; i < a.results.size(); ++i) {
    const RunResult &x = a.results[i], &y = b.results[i];
    REQUIRE(x.requests == y.requests);
    REQUIRE(x.sessions == y.sessions);
    REQUIRE(x.first_request_reward == y.first_request_reward);
    for (int g = 0; g < x.metrics.groups(); ++g)
      for (int d = 0; d < x.metrics.days(); ++d) {
        const GroupDayTotals &p = x.metrics.at(g, d), &q = y.metrics.at(g, d);
        REQUIRE(p.active == q.active);
        REQUIRE(p.returned == q.returned);
        REQUIRE(p.requests == q.requests);
        REQUIRE(p.reward == q.reward);
        REQUIRE(p.counts.valid == q.counts.valid);
        REQUIRE(p.counts.watch_seconds == q.counts.watch_seconds);
      }
  }
  REQUIRE(a.totals.size() == b.totals.size());
  for (std::size_t u = 0; u < a.totals.size(); ++u) {
    REQUIRE(a.totals[u].active_days == b.totals[u].active_days);
    REQUIRE(a.totals[u].reward == b.totals[u].reward);
    REQUIRE(a.totals[u].discounted_return == b.totals[u].discounted_return);
    REQUIRE(a.totals[u].chained_return == b.totals[u].chained_return);
  }
  if (with_state) REQUIRE(a.state == b.state);  // every user's state and interests at the end
}

void require_same_rows(const Seen& a, const Seen& b) {
  const TransitionColumns &x = a.transitions, &y = b.transitions;
  REQUIRE(x.size() > 1000);
  REQUIRE(x.size() == y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    REQUIRE(x.rows[i].user == y.rows[i].user);
    REQUIRE(x.rows[i].session == y.rows[i].session);
    REQUIRE(x.rows[i].step == y.rows[i].step);
    REQUIRE(x.rows[i].reward == y.rows[i].reward);
    REQUIRE(x.rows[i].done == y.rows[i].done);
    // Every field, the NaN of an unknown log density and the slots included (a row has no padding).
    REQUIRE(std::memcmp(&x.rows[i], &y.rows[i], sizeof(TransitionColumns::Row)) == 0);
  }
  REQUIRE(x.state == y.state);
  REQUIRE(x.lower == y.lower);
  REQUIRE(x.upper == y.upper);
  REQUIRE(x.action == y.action);
  REQUIRE(x.next_state == y.next_state);
  REQUIRE(x.baseline == y.baseline);
  REQUIRE(a.sessions.size() == b.sessions.size());
  for (std::size_t i = 0; i < a.sessions.size(); ++i) {
    REQUIRE(a.sessions[i].user == b.sessions[i].user);
    REQUIRE(a.sessions[i].end_time == b.sessions[i].end_time);
    REQUIRE(a.sessions[i].reward == b.sessions[i].reward);
  }
  REQUIRE(a.user_days.size() == b.user_days.size());
  for (std::size_t i = 0; i < a.user_days.size(); ++i) {
    REQUIRE(a.user_days[i].user == b.user_days[i].user);
    REQUIRE(a.user_days[i].reward == b.user_days[i].reward);
  }
  REQUIRE(a.impressions.size() > 0);
  REQUIRE(a.impressions.size() == b.impressions.size());
  for (std::size_t i = 0; i < a.impressions.size(); ++i) {
    REQUIRE(a.impressions[i].user == b.impressions[i].user);
    REQUIRE(a.impressions[i].item == b.impressions[i].item);
    REQUIRE(a.impressions[i].pred == b.impressions[i].pred);
  }
}

/// Throws on every request: a rank whose policy fails (under the name of the
/// policy it stands in for, so the ranks agree on the simulation).
class Failing final : public Policy {
 public:
  Failing(int dim, std::string name) : dim_(dim), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  int action_dim() const override { return dim_; }
  void act(std::span<const float>, std::span<float>, Rng&, ActionInfo*) const override {
    throw std::runtime_error("the policy failed");
  }

 private:
  int dim_;
  std::string name_;
};

}  // namespace

TEST_CASE("users sharded over 2 and 3 ranks give one process's results, rows and end state, to the bit") {
  const Scenario s = world(1300, 3);
  const Seen one = run(s, {1, 2}, 2, 97, true, nullptr);
  REQUIRE(one.error == "");

  SUBCASE("2 ranks of 1 thread; rank 0 collects the rows, rank 1 does not") {
    const std::vector<Seen> ranks = run_ranks(s, 2, {1, 2}, 1, 97, [](int r) { return r == 0; });
    for (const Seen& r : ranks) require_same_results(one, r);
    require_same_rows(one, ranks[0]);
    CHECK(ranks[1].transitions.size() == 0);
  }
  SUBCASE("3 ranks of 2 threads, every rank collecting, another block size") {
    const std::vector<Seen> ranks = run_ranks(s, 3, {1, 2}, 2, 61, [](int) { return true; });
    for (const Seen& r : ranks) {
      require_same_results(one, r);
      require_same_rows(one, r);
    }
  }
  SUBCASE("more ranks than blocks: a rank without users") {
    const Scenario small = world(150, 2);
    const Seen alone = run(small, {2}, 1, 256, false, nullptr);
    const std::vector<Seen> ranks = run_ranks(small, 2, {2}, 1, 256, [](int) { return false; });
    for (const Seen& r : ranks) require_same_results(alone, r);
  }
}

// UserSharding: each rank draws and holds only its blocks' users, and no
// state travels; the results, the rows and the per-user totals are still one
// process's, and save_state() on rank 0 gathers the whole state, the one
// process's to the byte. Restored from a saved state, sharded ranks continue
// as one process does.
TEST_CASE("users held only by their rank give one process's results, rows and end state, to the bit") {
  const Scenario s = world(1300, 3);
  const Seen one = run(s, {1, 2}, 2, 97, true, nullptr);
  REQUIRE(one.error == "");
  for (const int n : {2, 3}) {
    CAPTURE(n);
    const int block = n == 2 ? 97 : 61;
    const Seen again = run(s, {1, 2}, 2, block, true, nullptr);
    const std::vector<Seen> ranks = run_ranks(s, n, {1, 2}, n == 2 ? 1 : 2, block, [](int) { return true; }, {},
                                              /*sharded=*/true);
    for (const Seen& r : ranks) {
      require_same_results(again, r, /*with_state=*/false);
      require_same_rows(again, r);
    }
    CHECK(ranks[0].state == one.state);  // gathered on rank 0
    for (int r = 1; r < n; ++r) CHECK(ranks[static_cast<std::size_t>(r)].state.empty());
  }
  // Day 0 as one process, saved; days 1-2 on 2 sharded ranks from that state.
  const Seen first = run(s, {1}, 1, 97, false, nullptr);
  const Scenario rest = s;
  const Seen whole = run(s, {1, 2}, 1, 97, false, nullptr);
  std::string saved = first.state;
  const std::vector<Seen> resumed = run_ranks(rest, 2, {2}, 1, 97, [](int) { return false; }, {}, true, saved);
  REQUIRE(resumed[0].error == "");
  REQUIRE(resumed[1].error == "");
  CHECK(resumed[0].state == whole.state);
  CHECK(resumed[0].totals.size() == whole.totals.size());
}

TEST_CASE("a sharded population holds its blocks' users only, each as drawn for one process") {
  PopulationParams p;
  p.size = 1000;
  const Population all(p, 20, 7);
  std::int64_t held = 0;
  for (int r = 0; r < 3; ++r) {
    const UserShard sh{64, 3, r};
    const Population part(p, 20, 7, sh);
    CHECK(static_cast<std::int64_t>(part.states().size()) == sh.held(p.size));
    CHECK(part.all_interests().size() == part.states().size() * 20);
    held += sh.held(p.size);
    for (std::int64_t u = 0; u < p.size; ++u) {
      if (!sh.holds(u)) continue;
      CHECK(part.profile(u).sessions_per_day == all.profile(u).sessions_per_day);
      CHECK(std::equal(part.interests(u).begin(), part.interests(u).end(), all.interests(u).begin()));
    }
  }
  CHECK(held == p.size);  // every user on exactly one rank (the last block is short: 1000 = 15 x 64 + 40)
  CHECK(UserShard{64, 3, 0}.held(1000) == 5 * 64 + 40);  // blocks 0, 3, 6, 9, 12 and 15 (40 users)
  CHECK(UserShard{64, 3, 1}.held(1000) == 5 * 64);       // blocks 1, 4, 7, 10, 13
}

TEST_CASE("a sharded simulator refuses another cluster, another block size, and a Stepper") {
  const Scenario s = world(300, 2);
  const std::vector<std::string> errors = testing::on_local_ranks(2, [&](int, const Cluster& cl) {
    std::string error;
    Simulator sim(s, {}, 0, UserSharding{&cl, 64});
    RunOptions o;
    o.cluster = &cl;
    o.block_users = 32;
    try {
      sim.run_days(1, o, nullptr);
    } catch (const std::logic_error& e) {
      error = e.what();
    }
    try {
      o.cluster = nullptr;
      o.block_users = 64;
      sim.run_days(1, o, nullptr);
    } catch (const std::logic_error& e) {
      error += e.what();
    }
    try {
      Simulator::Stepper st(sim, {0});
    } catch (const std::logic_error& e) {
      error += e.what();
    }
    return error;
  });
  for (const std::string& e : errors) {
    CHECK(e.find("run every day with that cluster and block_users") != std::string::npos);
    // Both runs refused: the message twice.
    const std::string m = "sharded over 2 ranks in blocks of 64 (UserSharding); run every day";
    CHECK(e.find(m) != std::string::npos);
    CHECK(e.find(m) != e.rfind(m));
    CHECK(e.find("build it without UserSharding") != std::string::npos);
  }
}

TEST_CASE("a rank that fails stops every rank with its error, and none waits for it") {
  const Scenario s = world(600, 2);
  const std::vector<Seen> ranks = run_ranks(
      s, 2, {2}, 1, 64, [](int) { return true; },
      [&](int r) {
        std::vector<PolicyPtr> p;
        for (const GroupSpec& g : s.groups) {
          PolicyPtr real = make_policy(g.policy, s);
          if (r == 1) p.push_back(std::make_shared<Failing>(s.action_dim(), real->name()));
          else p.push_back(real);
        }
        return p;
      });
  CHECK(ranks[0].error.find("MPI rank 1: the policy failed") != std::string::npos);
  CHECK(ranks[1].error.find("MPI rank 1: the policy failed") != std::string::npos);
}

namespace {
/// Errors of 2 ranks running world(users(r), 1) with threads(r) threads.
std::vector<std::string> disagreeing(const std::function<std::int64_t(int)>& users,
                                     const std::function<int(int)>& threads) {
  return testing::on_local_ranks(2, [&](int r, const Cluster& cl) {
    Simulator sim(world(users(r), 1));
    RunOptions o;
    o.cluster = &cl;
    o.threads = threads(r);
    try {
      sim.run(o, nullptr);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  });
}
}  // namespace

TEST_CASE("ranks asked for different simulations, or with different --threads, refuse with an error naming it") {
  for (const std::string& e : disagreeing([](int r) { return r == 0 ? 300 : 301; }, [](int) { return 1; }))
    CHECK(e.find("MPI ranks disagree on the simulation") != std::string::npos);
  // The threads set the blocks a rank simulates per round: the rounds would not match.
  for (const std::string& e : disagreeing([](int) { return 300; }, [](int r) { return r + 1; }))
    CHECK(e.find("MPI ranks disagree on the simulation") != std::string::npos);
}
