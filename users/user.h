// A synthetic user: a fixed profile drawn from a segment and a state that
// evolves with what the user experiences (interests live in Population, one
// flat array, to keep a user small enough for paper-sized populations).
#pragma once

#include <array>
#include <cstdint>

#include "core/tasks.h"

namespace mtf {

struct UserProfile {
  std::uint8_t segment = 0;
  std::uint8_t age_group = 0;  ///< 0..3
  std::uint8_t male = 0;
  float sessions_per_day = 2;  ///< mean sessions per day when satisfied
  float preferred_hour = 20;   ///< centre of the activity window, hour of day
  float taste_long = 0;        ///< [-1, 1]: +1 loves long videos
  float clickbait_sensitivity = 1;  ///< >= 0: disappointment from clickbait
  float interaction = 0;       ///< logit shift of like/share/comment
  float patience = 0;          ///< logit shift of staying after a request
};

/// The last 100 behaviours (one per shown item), with running sums over the
/// window, including how many of the played items came from each topic (topics
/// beyond 64 share counters modulo 64).
class BehaviourHistory {
 public:
  static constexpr int kCapacity = 100;
  static constexpr int kTopicSlots = 64;
  enum Bits : std::uint8_t {
    kPlayed = 1, kValid = 2, kFinished = 4, kLiked = 8, kShared = 16, kCommented = 32, kSkipped = 64,
  };

  void push(std::uint8_t bits, float watch_seconds, int topic) {
    const auto ws = static_cast<std::uint16_t>(watch_seconds * 10.0f + 0.5f);
    const auto slot = static_cast<std::uint8_t>(topic % kTopicSlots);
    if (count_ == kCapacity) remove(bits_[head_], watch_ds_[head_], topic_[head_]);
    else ++count_;
    bits_[head_] = bits;
    watch_ds_[head_] = ws;
    topic_[head_] = slot;
    add(bits, ws, slot);
    head_ = static_cast<std::uint8_t>((head_ + 1) % kCapacity);
  }

  int count() const { return count_; }
  /// Number of entries in the window with the given bit set.
  int with(Bits b) const { return sums_[bit_index(b)]; }
  /// Total watch seconds over the window.
  float watch_seconds() const { return static_cast<float>(watch_ds_sum_) * 0.1f; }
  /// Played items of the window per topic slot.
  const std::array<std::uint8_t, kTopicSlots>& played_by_topic() const { return topic_played_; }

 private:
  static constexpr int bit_index(Bits b) {
    int i = 0;
    while (!((1 << i) & b)) ++i;
    return i;
  }
  void add(std::uint8_t bits, std::uint16_t ws, std::uint8_t slot) {
    for (int i = 0; i < 7; ++i) sums_[i] += (bits >> i) & 1;
    watch_ds_sum_ += ws;
    topic_played_[slot] += bits & kPlayed;
  }
  void remove(std::uint8_t bits, std::uint16_t ws, std::uint8_t slot) {
    for (int i = 0; i < 7; ++i) sums_[i] -= (bits >> i) & 1;
    watch_ds_sum_ -= ws;
    topic_played_[slot] -= bits & kPlayed;
  }
  std::array<std::uint8_t, kCapacity> bits_{};
  std::array<std::uint16_t, kCapacity> watch_ds_{};  // deciseconds
  std::array<std::uint8_t, kCapacity> topic_{};
  std::array<std::uint8_t, kTopicSlots> topic_played_{};
  std::array<std::int16_t, 7> sums_{};
  std::uint32_t watch_ds_sum_ = 0;
  std::uint8_t head_ = 0;
  std::uint8_t count_ = 0;
};

/// The evolving state of one user.
struct UserState {
  float fatigue = 0;        ///< >= 0, rises within a session, recovers between sessions
  float satisfaction = 0;   ///< EMA of experienced utility minus the reference
  double next_session = -1; ///< start time of the next session (sim seconds); < 0: none planned
  double session_start = 0;
  double last_session_end = -1;  ///< < 0: no session yet
  std::int32_t sessions_total = 0;  ///< sessions so far (also the next session's index)
  std::int32_t last_active_day = -1;  ///< last day with a session start; -1: none
  std::int32_t requests_in_session = 0;
  std::int32_t sessions_today = 0;
  std::int32_t last_session_requests = 0;
  float last_session_valid_rate = 0;
  BehaviourCounts last_request;  ///< feedback to the previous request of this session
  BehaviourCounts session;       ///< summed over the current session
  float session_reward = 0;
  BehaviourHistory history;
};

}  // namespace mtf
