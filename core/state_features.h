// The agent-facing state: a fixed-length feature vector built from what a real
// recommender could observe (the profile's age group and gender, and behaviour
// history), never from the user's hidden truth (interests, activity rate,
// fatigue, satisfaction, tastes).
//
// This table is the one definition of the features: the simulator builds them
// in this order (sim/state_features.cpp), the online learners scale them by
// their ranges (agents/online/), the run database stores their names, and
// README's "State features" section mirrors it.
#pragma once

#include <array>
#include <string_view>

namespace mtf {

inline constexpr int kStateDim = 32;

struct StateFeature {
  std::string_view name;
  std::string_view meaning;  ///< what it is and its scale
  /// The documented range [lo, hi] the feature stays in. The constant "bias"
  /// is given [-1, 1] so that it stays 1 when mapped onto [-1, 1].
  float lo = 0.0f;
  float hi = 1.0f;
};

inline constexpr std::array<StateFeature, kStateDim> kStateFeatures = {{
    {"age_group", "age group 0..3 divided by 3, in [0, 1]", 0, 1},
    {"male", "1 if male, else 0", 0, 1},
    {"activity", "log2(sessions per day since the run started, this one included) / 3, clipped to [-1, 1]", -1, 1},
    {"topic_top1", "share of the most played topic among plays in the last 100 shown items, [0, 1]", 0, 1},
    {"topic_top2", "share of the second most played topic (last 100), [0, 1]", 0, 1},
    {"topic_top3", "share of the third most played topic (last 100), [0, 1]", 0, 1},
    {"topics_played", "distinct topics played in the last 100 shown items / 10, clipped to [0, 2]", 0, 2},
    {"hist_play_rate", "plays / items shown over the last 100 shown items, [0, 1]", 0, 1},
    {"hist_valid_rate", "valid consumptions / items shown (last 100), [0, 1]", 0, 1},
    {"hist_finish_rate", "finishes / items shown (last 100), [0, 1]", 0, 1},
    {"hist_like_rate", "10 x likes / items shown (last 100), clipped to [0, 1]", 0, 1},
    {"hist_share_rate", "20 x shares / items shown (last 100), clipped to [0, 1]", 0, 1},
    {"hist_comment_rate", "20 x comments / items shown (last 100), clipped to [0, 1]", 0, 1},
    {"hist_skip_rate", "fast slides / items shown (last 100), [0, 1]", 0, 1},
    {"hist_watch_per_play", "mean watch seconds per play (last 100) / 60, clipped to [0, 2]", 0, 2},
    {"hist_fill", "items in the history window / 100, [0, 1]", 0, 1},
    {"session_requests", "requests so far in this session / 20, clipped to [0, 2] (flush num)", 0, 2},
    {"session_minutes", "minutes since the session started / 30, clipped to [0, 2]", 0, 2},
    {"last_plays", "plays in the previous request / items shown, [0, 1] (0 at session start)", 0, 1},
    {"last_valid", "valid consumptions in the previous request / items shown, [0, 1]", 0, 1},
    {"last_skips", "fast slides in the previous request / items shown, [0, 1]", 0, 1},
    {"last_watch", "watch seconds in the previous request / 120, clipped to [0, 2]", 0, 2},
    {"session_valid_rate", "valid consumptions / items shown in this session so far, [0, 1]", 0, 1},
    {"session_skip_rate", "fast slides / items shown in this session so far, [0, 1]", 0, 1},
    {"hour_sin", "sin(2 pi hour / 24), [-1, 1]", -1, 1},
    {"hour_cos", "cos(2 pi hour / 24), [-1, 1]", -1, 1},
    {"sessions_today", "sessions started today before this one / 5, clipped to [0, 2]", 0, 2},
    {"hours_since_last_session", "hours since the previous session ended / 24, clipped to [0, 2]; 2 if none", 0, 2},
    {"last_session_requests", "requests in the previous session / 20, clipped to [0, 2]", 0, 2},
    {"last_session_valid_rate", "valid consumptions / items shown in the previous session, [0, 1]", 0, 1},
    {"session_reward", "reward (Formula 2) accumulated in this session so far / 10, clipped to [-1, 3]", -1, 3},
    {"bias", "constant 1", -1, 1},
}};

/// Index of the constant feature (always 1): the last one.
inline constexpr int kBiasFeature = kStateDim - 1;
static_assert(kStateFeatures[kBiasFeature].name == "bias");

/// Index of the feature called `name`, or -1.
constexpr int state_feature_index(std::string_view name) {
  for (int i = 0; i < kStateDim; ++i)
    if (kStateFeatures[static_cast<std::size_t>(i)].name == name) return i;
  return -1;
}

}  // namespace mtf
