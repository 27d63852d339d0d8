// Parameters of the synthetic user population: segments (who the users are) and
// the dynamics constants (how any user reacts). Plain structs filled from a
// scenario's "population" and "user_model" blocks; defaults are the documented
// values used by scenarios/quickstart.json.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace mtf {

/// One user segment: the distribution profiles of its users are drawn from.
struct SegmentParams {
  std::string name = "casual";
  double share = 1.0;                 ///< fraction of the population, > 0 (normalised over segments)
  std::array<double, 4> age_mix = {0.25, 0.25, 0.25, 0.25};  ///< P(age group 0..3)
  double male_prob = 0.5;             ///< P(gender = male)
  double sessions_per_day = 2.0;      ///< mean sessions per day when satisfied, (0, 100]
  double activity_spread = 0.5;       ///< lognormal sigma of per-user activity around the mean
  double preferred_hour = 20.0;       ///< centre of the daily activity window, hour in [0, 24)
  double taste_long = 0.0;            ///< mean taste for long videos in [-1, 1] (+1 loves long ones)
  double clickbait_sensitivity = 1.0; ///< mean disappointment from clickbait, >= 0
  double interaction = 0.0;           ///< mean logit shift of like/share/comment propensity
  double patience = 0.0;              ///< logit shift of staying after each request (+ stays longer), [-10, 10]
  int interest_topics = 3;            ///< number of primary interest topics, >= 1
  bool operator==(const SegmentParams&) const = default;
};

/// Constants of the user dynamics shared by all users (see users/user_model.h for
/// the equations each one enters).
struct UserDynamicsParams {
  // Play propensity: logit = play_bias + play_interest*m + play_clickbait*c
  //                          + play_length*taste*dur + play_quality*(q-0.5) - play_fatigue*F
  double play_bias = -0.4, play_interest = 2.2, play_clickbait = 2.4, play_length = 0.8,
         play_quality = 0.6, play_fatigue = 0.8;
  // Watch fraction logit L = watch_bias + watch_interest*m + watch_quality*(q-0.5)
  //   - watch_clickbait*c + watch_length*taste*dur - watch_duration*dur - watch_fatigue*F
  double watch_bias = 0.4, watch_interest = 1.2, watch_quality = 2.5, watch_clickbait = 1.0,
         watch_length = 1.2, watch_duration = 0.8, watch_fatigue = 0.5, watch_noise = 1.0;
  // Interactions (given play): logit = bias + user interaction + appeal*e + quality*(q-0.5) + ...
  double like_bias = -5.0, share_bias = -6.5, comment_bias = -6.0, interact_appeal = 2.0,
         interact_quality = 1.5, interact_watch = 1.0;
  // Satisfaction and fatigue.
  double satisfaction_rate = 0.4;     ///< EMA rate of satisfaction toward a list's utility
  double utility_reference = 0.45;    ///< utility that leaves satisfaction unchanged
  double fatigue_per_item = 0.025, fatigue_unenjoyed = 0.05, fatigue_repetition = 0.03,
         fatigue_per_minute = 0.04;  ///< watching itself tires: per minute watched
  double fatigue_recovery_hours = 3.0; ///< e-folding time of fatigue between sessions
  // Leave hazard after each request: sigmoid(leave_bias - patience - leave_satisfaction*S
  //   + leave_fatigue*F + leave_requests*n/10).
  double leave_bias = -3.0, leave_satisfaction = 5.0, leave_fatigue = 1.2, leave_requests = 0.25;
  // Return: mean gap = (24 h / sessions_per_day) * exp(-return_satisfaction * S_end).
  double return_satisfaction = 1.6;
  double night_start_hour = 1.0, night_end_hour = 7.0;  ///< no sessions start at night
  // Interests.
  double interest_learning = 0.04;    ///< interest change per enjoyed (or disliked) item
  double interest_spill = 0.3;        ///< share of a change that spills to neighbouring topics
  double interest_daily_drift = 0.05; ///< daily mass moved along the topic graph
  double browse_seconds = 1.5;        ///< dwell of an item slid past without playing
  bool operator==(const UserDynamicsParams&) const = default;
};

/// The scenario's "population" block.
struct PopulationParams {
  std::int64_t size = 20000;          ///< number of users, >= 1
  std::vector<SegmentParams> segments;  ///< at least one
  bool operator==(const PopulationParams&) const = default;
};

}  // namespace mtf
