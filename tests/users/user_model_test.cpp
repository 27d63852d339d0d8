// The user model's mechanisms in isolation.
#include <doctest/doctest.h>

#include "users/population.h"
#include "users/user_model.h"

using namespace mtf;

TEST_CASE("the behaviour history keeps exact sums over the last 100 items") {
  BehaviourHistory h;
  for (int i = 0; i < 250; ++i) {
    std::uint8_t bits = i % 4 == 3 ? BehaviourHistory::kSkipped : BehaviourHistory::kPlayed;
    if (i % 2 == 0) bits |= BehaviourHistory::kValid;
    if (i % 5 == 0) bits |= BehaviourHistory::kLiked;
    // Topic 7 for the first 200 items, then topic 70 (slot 70 % 64 = 6).
    h.push(bits, i < 150 ? 100.0f : 1.0f, i < 200 ? 7 : 70);
  }
  // i = 150..249: plays are the i with i % 4 != 3 (75 of them), 37 of them before 200.
  CHECK(h.played_by_topic()[7] == 37);
  CHECK(h.played_by_topic()[6] == 38);
  CHECK(h.played_by_topic()[0] == 0);
  CHECK(h.count() == 100);
  CHECK(h.with(BehaviourHistory::kPlayed) == 75);
  CHECK(h.with(BehaviourHistory::kSkipped) == 25);
  CHECK(h.with(BehaviourHistory::kValid) == 50);    // i = 150..249: every other
  CHECK(h.with(BehaviourHistory::kLiked) == 20);    // every fifth
  CHECK(h.with(BehaviourHistory::kShared) == 0);
  CHECK(h.watch_seconds() == doctest::Approx(100.0));  // the last 100 items watched 1 s each
}

TEST_CASE("tired or dissatisfied users leave sooner") {
  const UserModel m(UserDynamicsParams{});
  UserProfile p;
  UserState s;
  const double fresh = m.leave_probability(p, s);
  s.fatigue = 1.0f;
  const double tired = m.leave_probability(p, s);
  s.fatigue = 0.0f;
  s.satisfaction = -0.3f;
  const double unhappy = m.leave_probability(p, s);
  s.satisfaction = 0.3f;
  const double happy = m.leave_probability(p, s);
  CHECK(tired > fresh);
  CHECK(unhappy > fresh);
  CHECK(happy < fresh);
}

TEST_CASE("satisfied users come back sooner") {
  const UserModel m(UserDynamicsParams{});
  UserProfile p;
  UserState happy, unhappy;
  happy.satisfaction = 0.3f;
  unhappy.satisfaction = -0.3f;
  double gap_happy = 0, gap_unhappy = 0;
  Rng a(1), b(1);  // common random numbers
  for (int i = 0; i < 2000; ++i) {
    gap_happy += m.next_session_start(p, happy, 12 * 3600.0, a) - 12 * 3600.0;
    gap_unhappy += m.next_session_start(p, unhappy, 12 * 3600.0, b) - 12 * 3600.0;
  }
  CHECK(gap_happy < 0.8 * gap_unhappy);
}

TEST_CASE("clickbait gets played more but disappoints") {
  const UserModel m(UserDynamicsParams{});
  UserProfile p;
  UserState s;
  const ResponseCoeffs k = m.coeffs(p, s);
  ItemView honest{0, 40.0f, 0.6f, 0.05f, 0.5f, 0.12f};
  ItemView bait = honest;
  bait.clickbait = 0.9f;
  bait.quality = 0.3f;
  Rng r1(4), r2(4);
  int plays_h = 0, plays_b = 0;
  double util_h = 0, util_b = 0;
  for (int i = 0; i < 4000; ++i) {
    const ItemFeedback h = m.react(k, p, honest, 0.6f, r1);
    const ItemFeedback b = m.react(k, p, bait, 0.6f, r2);
    plays_h += h.played;
    plays_b += b.played;
    util_h += h.utility;
    util_b += b.utility;
  }
  CHECK(plays_b > plays_h);
  CHECK(util_b < util_h - 0.1 * 4000);
}

TEST_CASE("a user's profile depends only on the seed and the user id") {
  std::vector<SegmentParams> segs(2);
  segs[1].taste_long = 0.8;
  std::vector<float> i1(10), i2(10);
  const UserProfile p1 = Population::draw_profile(segs, 10, 5, 77, i1);
  const UserProfile p2 = Population::draw_profile(segs, 10, 5, 77, i2);
  CHECK(p1.segment == p2.segment);
  CHECK(p1.taste_long == p2.taste_long);
  CHECK(i1 == i2);
  PopulationParams pp;
  pp.size = 100;
  pp.segments = segs;
  const Population small(pp, 10, 5);
  pp.size = 1000;
  const Population large(pp, 10, 5);
  CHECK(small.profile(42).taste_long == large.profile(42).taste_long);
}

TEST_CASE("a session's bookkeeping: counters start afresh, requests add up, the end closes the totals") {
  const UserModel m(UserDynamicsParams{});
  UserProfile p;
  UserState s;
  s.fatigue = 0.5f;
  s.last_session_end = 0.0;
  s.session_reward = 3.0f;  // left over from the last session
  s.requests_in_session = 7;
  m.start_session(s, 6 * 3600.0, 2);
  CHECK(s.fatigue < 0.5f);  // six hours of rest since the last session ended
  CHECK(s.sessions_today == 2);
  CHECK(s.session_start == 6 * 3600.0);
  CHECK(s.requests_in_session == 0);
  CHECK(s.session_reward == 0.0f);
  CHECK(s.session.shown == 0);
  CHECK(s.next_session == -1);

  CHECK_FALSE(UserModel::mark_active(s, 3));  // never active before
  CHECK(UserModel::mark_active(s, 4));        // active the day before
  CHECK(s.last_active_day == 4);

  BehaviourCounts a, b;
  a.shown = 6;
  a.valid = 3;
  b.shown = 6;
  b.valid = 1;
  UserModel::record_request(s, a, 2.5);
  UserModel::record_request(s, b, -0.5);
  CHECK(s.requests_in_session == 2);
  CHECK(s.last_request.valid == 1);
  CHECK(s.session.shown == 12);
  CHECK(s.session.valid == 4);
  CHECK(s.session_reward == doctest::Approx(2.0f));

  Rng rng(7);
  const int before = s.sessions_total;
  const double next = m.end_session(p, s, 7 * 3600.0, rng);
  CHECK(s.last_session_end == 7 * 3600.0);
  CHECK(s.last_session_requests == 2);
  CHECK(s.last_session_valid_rate == doctest::Approx(4.0f / 12.0f));
  CHECK(s.sessions_total == before + 1);
  CHECK(next == s.next_session);
  CHECK(next > 7 * 3600.0);  // the next session starts after this one ended
}
