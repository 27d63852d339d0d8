// User reactions and dynamics (equations in user_model.h).
#include "users/user_model.h"

#include <algorithm>
#include <boost/random/exponential_distribution.hpp>
#include <boost/random/normal_distribution.hpp>
#include <cmath>

#include "sim/event_queue.h"

namespace mtf {
namespace {

inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }
constexpr float kFinishFraction = 0.97f;
constexpr float kInteractionShock = 0.8f;  // how strongly z couples interactions to watching

}  // namespace

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

namespace {
// Moves a start time that falls in the night window to the morning after.
double skip_night(double t, double night_start_h, double night_end_h, Rng& rng) {
  const double day_start = std::floor(t / kSecondsPerDay) * kSecondsPerDay;
  const double hour = (t - day_start) / 3600.0;
  if (hour >= night_start_h && hour < night_end_h)
    return day_start + night_end_h * 3600.0 + rng.uniform01d() * 2.0 * 3600.0;
  return t;
}
}  // namespace

double UserModel::next_session_start(const UserProfile& u, const UserState& s, double end,
                                     Rng& rng) const {
  const double mean_h = 24.0 / u.sessions_per_day * std::exp(-p_.return_satisfaction * s.satisfaction);
  boost::random::exponential_distribution<double> gap(1.0 / (mean_h * 3600.0));
  // At least a minute between sessions.
  return skip_night(end + 60.0 + gap(rng), p_.night_start_hour, p_.night_end_hour, rng);
}

double UserModel::first_session_start(const UserProfile& u, int day, Rng& rng) const {
  boost::random::normal_distribution<double> spread(0.0, 3.0);
  double hour = u.preferred_hour + spread(rng);
  hour = std::fmod(std::fmod(hour, 24.0) + 24.0, 24.0);
  const double t = day * kSecondsPerDay + hour * 3600.0;
  return skip_night(t, p_.night_start_hour, p_.night_end_hour, rng);
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
