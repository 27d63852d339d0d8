// The oracle (experiments/oracle.h): common random numbers make a policy's
// difference with itself exactly zero, results do not depend on the thread
// count, a clearly worse action comes out worse, and pairing narrows intervals.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "experiments/metric_keys.h"
#include "experiments/oracle.h"
#include "sim/policies.h"
#include "test_world.h"

using namespace mtf;
using namespace mtf::experiments;

namespace {

const OracleDifference& find(const OracleResult& r, const std::string& policy, const std::string& metric) {
  for (const OracleDifference& d : r.differences)
    if (d.policy == policy && d.metric == metric) return d;
  throw std::runtime_error("no difference " + policy + " " + metric);
}

OracleOptions small(int threads) {
  OracleOptions o;
  o.users = 600;
  o.days = 2;
  o.user_seed = 77;
  o.threads = threads;
  return o;
}

}  // namespace

TEST_CASE("a policy compared with itself differs by exactly zero with a zero-width interval") {
  const Scenario w = test::quickstart_world(10, 1);
  const PolicyPtr a = std::make_shared<BaselinePolicy>(w.fusion);
  const PolicyPtr b = std::make_shared<BaselinePolicy>(w.fusion);
  const OracleResult r = evaluate_policies(w, {{"baseline", a}, {"again", b}}, small(2));
  REQUIRE(r.differences.size() == oracle_metrics().size());
  for (const OracleDifference& d : r.differences) {
    CHECK(d.difference == 0.0);
    CHECK(d.half_width == 0.0);
    CHECK(d.unpaired_half_width > 0.0);
  }
  CHECK(r.policies[0].requests == r.policies[1].requests);
  CHECK(r.policies[0].requests > 0);
}

TEST_CASE("the oracle's results are identical for 1 and 2 threads") {
  const Scenario w = test::quickstart_world(10, 1);
  const std::vector<std::pair<std::string, PolicyPtr>> p = {
      {"baseline", std::make_shared<BaselinePolicy>(w.fusion)},
      {"flat", std::make_shared<ConstantPolicy>(std::vector<float>(static_cast<std::size_t>(w.action_dim()), 0.0f))}};
  const OracleResult r1 = evaluate_policies(w, p, small(1));
  const OracleResult r2 = evaluate_policies(w, p, small(2));
  CHECK(oracle_json(r1)["differences"] == oracle_json(r2)["differences"]);
  for (std::size_t k = 0; k < p.size(); ++k) {
    CHECK(r1.policies[k].requests == r2.policies[k].requests);
    for (std::size_t m = 0; m < oracle_metrics().size(); ++m) {
      CHECK(r1.policies[k].metrics[m].value == r2.policies[k].metrics[m].value);
      CHECK(r1.policies[k].metrics[m].half_width == r2.policies[k].metrics[m].half_width);
    }
  }
}

TEST_CASE("a degenerate extreme action comes out worse than the baseline with an interval excluding zero") {
  const Scenario w = test::quickstart_world(10, 1);
  const PolicyPtr worst =
      std::make_shared<ConstantPolicy>(std::vector<float>(static_cast<std::size_t>(w.action_dim()), -1.0f));
  const OracleResult r =
      evaluate_policies(w, {{"baseline", std::make_shared<BaselinePolicy>(w.fusion)}, {"worst", worst}}, small(2));
  const OracleDifference& d = find(r, "worst", keys::kRewardPerUserDay);
  CHECK(d.difference < 0);
  CHECK(d.difference + d.half_width < 0);  // the interval excludes 0
  CHECK(d.relative_percent < -50);
  CHECK(r.policies[1].metrics[0].value < r.policies[0].metrics[0].value);
}

TEST_CASE("pairing gives a narrower interval than independent groups for a policy near the baseline") {
  // A degenerate action leaves its users nothing in common with the baseline's
  // (their reward is near 0 for everyone), so pairing cannot help there; a
  // policy that acts like the baseline keeps the users' correlation.
  const Scenario w = test::quickstart_world(10, 1);
  const PolicyPtr near =
      std::make_shared<ConstantPolicy>(std::vector<float>(static_cast<std::size_t>(w.action_dim()), 0.5f));
  const OracleResult r =
      evaluate_policies(w, {{"baseline", std::make_shared<BaselinePolicy>(w.fusion)}, {"near", near}}, small(2));
  for (const std::string& m : oracle_metrics()) {
    const OracleDifference& d = find(r, "near", m);
    CHECK(d.half_width < d.unpaired_half_width);
    CHECK(d.variance_reduction > 1.0);
  }
  const OracleDifference& reward = find(r, "near", keys::kRewardPerUserDay);
  CHECK(reward.variance_reduction > 2.0);
}

TEST_CASE("the oracle refuses an empty list and a policy of another action dimension") {
  const Scenario w = test::quickstart_world(10, 1);
  CHECK_THROWS_AS(evaluate_policies(w, {}, small(1)), std::invalid_argument);
  CHECK_THROWS_AS(evaluate_policies(w, {{"short", std::make_shared<ConstantPolicy>(std::vector<float>{0.0f})}}, small(1)),
                  std::invalid_argument);
}

TEST_CASE("the in-session discounted return: gamma 1 is the session's whole reward, a smaller gamma less") {
  const Scenario w = test::quickstart_world(10, 1);
  const PolicyPtr p = std::make_shared<BaselinePolicy>(w.fusion);
  const auto index_of = [](const char* metric) {
    const auto& m = oracle_metrics();
    const auto it = std::find(m.begin(), m.end(), metric);
    REQUIRE(it != m.end());
    return static_cast<std::size_t>(it - m.begin());
  };
  const std::size_t session = index_of(user_metric::kDiscountedReturn), chained = index_of(user_metric::kChainedReturn);
  const auto value = [&](double gamma) {
    OracleOptions o = small(2);
    o.gamma = gamma;
    return evaluate_policy(w, "baseline", p, o);
  };
  const OracleUserValues one = value(1.0);
  // At gamma 1: every reward of every session, over the sessions: reward per
  // user-day x user-days / sessions; and per user, chained over sessions and
  // days, the reward per user-day x days.
  const double reward_per_user_day = one.level.at(0);
  const double undiscounted = reward_per_user_day * 600 * 2 / static_cast<double>(one.value.sessions);
  CHECK(one.level.at(session) == doctest::Approx(undiscounted).epsilon(1e-9));
  CHECK(one.level.at(chained) == doctest::Approx(reward_per_user_day * 2).epsilon(1e-9));
  // Rewards are positive here, so discounting removes some of every longer session.
  const OracleUserValues h = value(0.5), z = value(0.0);
  const double half = h.level.at(session), zero = z.level.at(session);
  CHECK(half < one.level.at(session));
  CHECK(zero < half);
  CHECK(zero > 0);
  // Chained, gamma 0.5 discounts a user's later sessions too: less than the
  // user's sessions' in-session returns added up (sessions per user x the
  // return per session), more than the first session's.
  const double users = 600, sessions_per_user = static_cast<double>(h.value.sessions) / users;
  CHECK(h.level.at(chained) < half * sessions_per_user);
  CHECK(h.level.at(chained) > z.level.at(chained));
  // Chained from the start of each session of the first day: at gamma 1 a
  // session's value runs over the user's later sessions as well, more than
  // a session's own reward. The weight beyond the window, gamma^m per
  // session, is 1 at gamma 1 (no discounting: the whole horizon lies beyond)
  // and 0 at gamma 0.
  const std::size_t from_start = index_of(user_metric::kChainedSessionReturn),
                    tail = index_of(user_metric::kChainedTailWeight);
  CHECK(one.level.at(from_start) > one.level.at(session));
  CHECK(h.level.at(from_start) > half);
  CHECK(h.level.at(from_start) < one.level.at(from_start));
  CHECK(one.level.at(tail) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(z.level.at(tail) == 0.0);
  CHECK((h.level.at(tail) > 0 && h.level.at(tail) < 0.5));
  // On a one-day window at gamma 0 every session is a first-day one and only
  // its first request counts: the in-session return's value.
  OracleOptions one_day = small(2);
  one_day.days = 1;
  one_day.gamma = 0.0;
  const OracleUserValues d1 = evaluate_policy(w, "baseline", p, one_day);
  CHECK(d1.level.at(from_start) == doctest::Approx(d1.level.at(session)).epsilon(1e-12));
  // Pairing against a later evaluation of the same policy on the same users: exactly 0.
  for (const std::size_t m : {session, chained, from_start}) {
    const OracleDifference d = paired_difference(value(0.5), value(0.5), m);
    CHECK(d.difference == 0.0);
    CHECK(d.half_width == 0.0);
  }
  OracleOptions bad = small(1);
  bad.gamma = 1.5;
  CHECK_THROWS_AS(evaluate_policy(w, "baseline", p, bad), std::invalid_argument);
}
