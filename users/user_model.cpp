// User reactions and dynamics (equations in user_model.h).
#include "users/user_model.h"

#include <algorithm>
#include <boost/random/exponential_distribution.hpp>
#include <boost/random/normal_distribution.hpp>
#include <cmath>

#include "core/sim_time.h"
#include "core/fast_math.h"

namespace mtf {
namespace {

inline float sigmoidf(float x) { return fast_sigmoid(x); }  // core/fast_math.h: relative error < 2e-6
constexpr float kFinishFraction = 0.97f;
constexpr float kInteractionShock = 0.8f;  // how strongly z couples interactions to watching

}  // namespace

UserModel::UserModel(const UserDynamicsParams& p) : p_(p), mean_activity_table_(240) {
  for (int i = 0; i < 240; ++i) mean_activity_table_[static_cast<std::size_t>(i)] = mean_activity_exact(i / 10.0);
}

void UserModel::start_session(UserState& st, double now, int sessions_today) const {
  if (st.last_session_end >= 0) rest(st, now - st.last_session_end);
  st.sessions_today = sessions_today;
  st.session_start = now;
  st.requests_in_session = 0;
  st.session = {};
  st.last_request = {};
  st.session_reward = 0;
  st.next_session = -1;
}

bool UserModel::mark_active(UserState& st, int day) {
  const bool returned = st.last_active_day == day - 1;
  st.last_active_day = day;
  return returned;
}

void UserModel::record_request(UserState& st, const BehaviourCounts& counts, double reward) {
  ++st.requests_in_session;
  st.last_request = counts;
  st.session += counts;
  st.session_reward += static_cast<float>(reward);
}

double UserModel::end_session(const UserProfile& profile, UserState& st, double now, Rng& rng) const {
  st.last_session_end = now;
  st.last_session_requests = st.requests_in_session;
  st.last_session_valid_rate =
      st.session.shown > 0 ? static_cast<float>(st.session.valid) / st.session.shown : 0.0f;
  ++st.sessions_total;
  st.next_session = next_session_start(profile, st, now, rng);
  return st.next_session;
}

ResponseCoeffs UserModel::coeffs(const UserProfile& u, const UserState& s) const {
  const float F = s.fatigue;
  ResponseCoeffs k{};
  k.play_m = static_cast<float>(p_.play_interest);
  k.play_c = static_cast<float>(p_.play_clickbait);
  k.play_q = static_cast<float>(p_.play_quality);
  k.play_d = static_cast<float>(p_.play_length) * u.taste_long;
  k.play0 = static_cast<float>(p_.play_bias - 0.5 * p_.play_quality - p_.play_fatigue * F);
  k.watch_m = static_cast<float>(p_.watch_interest);
  k.watch_c = -static_cast<float>(p_.watch_clickbait);
  k.watch_q = static_cast<float>(p_.watch_quality);
  k.watch_d = static_cast<float>(p_.watch_length) * u.taste_long - static_cast<float>(p_.watch_duration);
  k.watch0 = static_cast<float>(p_.watch_bias - 0.5 * p_.watch_quality - p_.watch_fatigue * F);
  const float inter0 = u.interaction - static_cast<float>(0.5 * p_.interact_quality);
  k.like0 = static_cast<float>(p_.like_bias) + inter0;
  k.share0 = static_cast<float>(p_.share_bias) + inter0;
  k.comment0 = static_cast<float>(p_.comment_bias) + inter0;
  k.inter_e = static_cast<float>(p_.interact_appeal);
  k.inter_q = static_cast<float>(p_.interact_quality);
  k.inter_m = static_cast<float>(p_.interact_watch);
  k.watch_noise = static_cast<float>(p_.watch_noise);
  return k;
}

ItemFeedback UserModel::react(const ResponseCoeffs& k, const UserProfile& u, const ItemView& it,
                              float interest, Rng& rng) const {
  ResponseLogits<float> l;
  response_logits(k, interest, it.dur_feature, item_terms(k, it.clickbait, it.quality, it.appeal), l);
  ItemFeedback fb;
  if (rng.uniform01() >= sigmoidf(l.play)) {
    fb.skipped = true;
    fb.dwell_seconds = static_cast<float>(p_.browse_seconds);
    fb.utility = 0.05f;  // slid past: a small letdown
    return fb;
  }
  boost::random::normal_distribution<float> normal(0.0f, 1.0f);
  const float z = normal(rng);
  fb.played = true;
  fb.fraction = sigmoidf(l.watch + k.watch_noise * z);
  fb.watch_seconds = fb.fraction * it.duration;
  fb.valid = fb.watch_seconds > 10.0f;
  fb.finished = fb.fraction >= kFinishFraction;
  fb.skipped = fb.watch_seconds < 3.0f;
  const float shock = kInteractionShock * z;
  fb.liked = rng.uniform01() < sigmoidf(l.like + shock);
  fb.shared = rng.uniform01() < sigmoidf(l.share + shock);
  fb.commented = rng.uniform01() < sigmoidf(l.comment + shock);
  fb.dwell_seconds = fb.watch_seconds + 1.0f;
  fb.utility = fb.fraction * (0.4f + it.quality) * (0.6f + 0.8f * interest) *
                   (1.0f + 0.5f * u.taste_long * it.dur_feature) -
               u.clickbait_sensitivity * it.clickbait * (1.0f - fb.fraction) +
               0.3f * static_cast<float>(fb.liked + fb.shared + fb.commented);
  return fb;
}

double UserModel::leave_probability(const UserProfile& u, const UserState& s) const {
  const double x = p_.leave_bias - u.patience - p_.leave_satisfaction * s.satisfaction +
                   p_.leave_fatigue * s.fatigue + p_.leave_requests * s.requests_in_session / 10.0;
  return 1.0 / (1.0 + std::exp(-x));
}

double UserModel::activity(double hour, double preferred_hour) const {
  const bool night = p_.night_start_hour <= p_.night_end_hour
                         ? hour >= p_.night_start_hour && hour < p_.night_end_hour
                         : hour >= p_.night_start_hour || hour < p_.night_end_hour;
  if (night) return 0.0;
  double d = std::fabs(hour - preferred_hour);
  d = std::fmin(d, 24.0 - d);
  return kActivityFloor + std::exp(-d * d / (2.0 * kActivitySpreadHours * kActivitySpreadHours));
}

double UserModel::mean_activity_exact(double preferred_hour) const {
  double sum = 0;
  for (int q = 0; q < 96; ++q) sum += activity((q + 0.5) / 4.0, preferred_hour);
  return sum / 96.0;
}

double UserModel::mean_activity(double preferred_hour) const {
  const int i = static_cast<int>(std::lround(preferred_hour * 10.0)) % 240;
  return mean_activity_table_[static_cast<std::size_t>(i < 0 ? i + 240 : i)];
}

double UserModel::next_session_start(const UserProfile& u, const UserState& s, double end,
                                     Rng& rng) const {
  // Session starts form a Poisson process whose rate follows the daily activity
  // curve, sampled by thinning: candidates at the envelope rate, each accepted
  // with probability activity(hour) / its maximum.
  const double mean = mean_activity(u.preferred_hour);
  const double per_hour = u.sessions_per_day / 24.0 * std::exp(p_.return_satisfaction * s.satisfaction);
  const double peak = kActivityFloor + 1.0;
  boost::random::exponential_distribution<double> gap(per_hour * peak / mean / 3600.0);
  double t = end + 60.0;  // at least a minute between sessions
  for (int tries = 0; tries < 100000; ++tries) {
    t += gap(rng);
    const double hour = std::fmod(t, kSecondsPerDay) / 3600.0;
    if (rng.uniform01d() * peak < activity(hour, u.preferred_hour)) return t;
  }
  return t;  // unreachable for any sensible rate; keeps the loop bounded
}

double UserModel::first_session_start(const UserProfile& u, Rng& rng) const {
  // The process is memoryless, so starting it at time 0 (with neutral
  // satisfaction) gives day 0 the same statistics as any later day.
  return next_session_start(u, UserState{}, -60.0, rng);
}

void UserModel::rest(UserState& s, double gap_seconds) const {
  s.fatigue *= static_cast<float>(std::exp(-gap_seconds / (p_.fatigue_recovery_hours * 3600.0)));
  s.satisfaction *= static_cast<float>(std::exp(-gap_seconds / (24.0 * 3600.0)));
}

void UserModel::learn_interest(std::span<float> interests, int topic, float delta,
                               std::span<const int> nbs) const {
  const float spill = static_cast<float>(p_.interest_spill);
  interests[topic] = std::clamp(interests[topic] + delta * (1.0f - spill), 0.02f, 1.0f);
  if (nbs.empty()) return;
  const float each = delta * spill / static_cast<float>(nbs.size());
  for (const int t : nbs) interests[t] = std::clamp(interests[t] + each, 0.02f, 1.0f);
}

}  // namespace mtf
