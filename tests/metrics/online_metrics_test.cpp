// Online metrics: the summary of a group against hand-computed values.
#include <doctest/doctest.h>

#include <cmath>

#include "metrics/online_metrics.h"
#include "metrics/reward.h"

using namespace mtf;

TEST_CASE("a group's summary averages over every assigned user and day") {
  OnlineMetrics m(1, 3);
  // 10 users; day 0: 4 active, 3 of them back on day 1; day 1: 5 active, 2 back on
  // day 2; day 2: 2 active (the last day's returns are not known).
  GroupDayTotals& d0 = m.at(0, 0);
  d0.active = 4;
  d0.returned = 3;
  d0.sessions = 6;
  d0.requests = 30;
  d0.reward = 60;
  d0.counts.plays = 100;
  d0.counts.valid = 50;
  d0.counts.likes = 5;
  d0.counts.shares = 3;
  d0.counts.comments = 2;
  d0.counts.watch_seconds = 1200;
  d0.counts.dwell_seconds = 1500;
  GroupDayTotals& d1 = m.at(0, 1);
  d1.active = 5;
  d1.returned = 2;
  d1.sessions = 9;
  d1.requests = 45;
  d1.reward = 90;
  d1.counts.plays = 100;
  d1.counts.valid = 40;
  d1.counts.watch_seconds = 1800;
  d1.counts.dwell_seconds = 2100;
  GroupDayTotals& d2 = m.at(0, 2);
  d2.active = 2;
  d2.returned = 0;
  d2.sessions = 5;
  d2.requests = 25;
  d2.reward = 50;
  d2.counts.plays = 50;
  d2.counts.valid = 10;
  d2.counts.likes = 10;

  const GroupSummary s = m.summarise(0, 10);
  CHECK(s.users == 10);
  CHECK(s.dau_share == doctest::Approx(11.0 / 30.0));
  CHECK(s.sessions_per_user_day == doctest::Approx(20.0 / 30.0));
  CHECK(s.requests_per_session == doctest::Approx(100.0 / 20.0));
  CHECK(s.valid_per_user_day == doctest::Approx(100.0 / 30.0));
  CHECK(s.watch_s_per_user_day == doctest::Approx(3000.0 / 30.0));
  CHECK(s.dwell_s_per_user_day == doctest::Approx(3600.0 / 30.0));
  CHECK(s.positive_rate == doctest::Approx(20.0 / 250.0));
  CHECK(s.reward_per_session == doctest::Approx(200.0 / 20.0));
  CHECK(s.return_rate == doctest::Approx(5.0 / 9.0));  // days 0 and 1 only
}

TEST_CASE("a one-day run has no next-day return rate") {
  OnlineMetrics m(1, 1);
  m.at(0, 0).active = 3;
  CHECK(std::isnan(m.summarise(0, 3).return_rate));
}

TEST_CASE("the reward is Formula 2: the weighted sum of the request's behaviours") {
  RewardParams w;
  w.play = 0.1;
  w.valid = 1;
  w.watch_minutes = 0.5;
  w.finish = 0.3;
  w.like = 1;
  w.share = 2;
  w.comment = 1.5;
  w.skip = -0.2;
  BehaviourCounts v;
  v.plays = 4;
  v.valid = 3;
  v.watch_seconds = 90;
  v.finishes = 1;
  v.likes = 1;
  v.shares = 1;
  v.comments = 0;
  v.skips = 2;
  // 0.4 + 3 + 0.75 + 0.3 + 1 + 2 + 0 - 0.4 = 7.05
  CHECK(reward_of(w, v) == doctest::Approx(7.05));
}
