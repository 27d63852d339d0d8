// The user population: profiles drawn from the scenario's segments, each
// user's evolving state, and the interest vectors (one flat array, users x topics).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "users/user_params.h"
#include "users/user.h"

namespace mtf {

class Population {
 public:
  /// Draws `params.size` users. User u's profile comes from its own stream
  /// (seed, kUserProfile, u), so a user is the same whatever the population size.
  Population(const PopulationParams& params, int topics, std::uint64_t seed);

  std::int64_t size() const { return static_cast<std::int64_t>(profiles_.size()); }
  int topics() const { return topics_; }
  const std::vector<SegmentParams>& segments() const { return segments_; }

  const UserProfile& profile(std::int64_t u) const { return profiles_[u]; }
  UserState& state(std::int64_t u) { return states_[u]; }
  const UserState& state(std::int64_t u) const { return states_[u]; }
  std::span<float> interests(std::int64_t u) {
    return {interests_.data() + u * topics_, static_cast<std::size_t>(topics_)};
  }
  std::span<const float> interests(std::int64_t u) const {
    return {interests_.data() + u * topics_, static_cast<std::size_t>(topics_)};
  }

  /// Every user's state and interest vector at once (Simulator::save_state).
  std::span<UserState> states() { return states_; }
  std::span<const UserState> states() const { return states_; }
  std::span<float> all_interests() { return interests_; }
  std::span<const float> all_interests() const { return interests_; }

  /// Draws one profile (and fills its interest vector) for user `u` from the segments.
  static UserProfile draw_profile(const std::vector<SegmentParams>& segments, int topics,
                                  std::uint64_t seed, std::int64_t u, std::span<float> interests);

 private:
  int topics_;
  std::vector<SegmentParams> segments_;
  std::vector<UserProfile> profiles_;
  std::vector<UserState> states_;
  std::vector<float> interests_;
};

}  // namespace mtf
