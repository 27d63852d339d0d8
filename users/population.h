// The user population: profiles drawn from the scenario's segments, each
// user's evolving state, and the interest vectors (one flat array, users x topics).
#pragma once

#include <cassert>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "users/user_params.h"
#include "users/user.h"

namespace mtf {

/// Which users a process holds when the users are sharded over the ranks of an
/// MPI run: blocks of `block` users go to the ranks in turn (block b to rank
/// b mod ranks), as the simulator shards its work (sim/simulator.h). The
/// default holds every user.
struct UserShard {
  std::int64_t block = 1;
  int ranks = 1, rank = 0;
  bool all() const { return ranks == 1; }
  bool holds(std::int64_t u) const { return all() || (u / block) % ranks == rank; }
  /// Where held user u lies among the held users (in user order); u must be held.
  std::int64_t local(std::int64_t u) const {
    if (all()) return u;
    assert(holds(u));
    const std::int64_t b = u / block;
    return (b / ranks) * block + (u - b * block);
  }
  /// How many of `users` users are held.
  std::int64_t held(std::int64_t users) const;
};

class Population {
 public:
  /// Draws `params.size` users, or with `shard` the users it holds (state,
  /// interests and profile; the others are not drawn and take no memory).
  /// User u's profile comes from its own stream (seed, kUserProfile, u), so a
  /// user is the same whatever the population size or the shard. Every
  /// per-user accessor takes the user's number u and needs shard().holds(u).
  Population(const PopulationParams& params, int topics, std::uint64_t seed, UserShard shard = {});

  std::int64_t size() const { return size_; }
  const UserShard& shard() const { return shard_; }
  int topics() const { return topics_; }
  const std::vector<SegmentParams>& segments() const { return segments_; }

  const UserProfile& profile(std::int64_t u) const { return profiles_[static_cast<std::size_t>(shard_.local(u))]; }
  UserState& state(std::int64_t u) { return states_[static_cast<std::size_t>(shard_.local(u))]; }
  const UserState& state(std::int64_t u) const { return states_[static_cast<std::size_t>(shard_.local(u))]; }
  std::span<float> interests(std::int64_t u) {
    return {interests_.data() + shard_.local(u) * topics_, static_cast<std::size_t>(topics_)};
  }
  std::span<const float> interests(std::int64_t u) const {
    return {interests_.data() + shard_.local(u) * topics_, static_cast<std::size_t>(topics_)};
  }

  /// Every held user's state and interest vector at once, in user order
  /// (Simulator::save_state).
  std::span<UserState> states() { return states_; }
  std::span<const UserState> states() const { return states_; }
  std::span<float> all_interests() { return interests_; }
  std::span<const float> all_interests() const { return interests_; }

  /// Draws one profile (and fills its interest vector) for user `u` from the segments.
  static UserProfile draw_profile(const std::vector<SegmentParams>& segments, int topics,
                                  std::uint64_t seed, std::int64_t u, std::span<float> interests);

 private:
  int topics_;
  std::int64_t size_;
  UserShard shard_;
  std::vector<SegmentParams> segments_;
  std::vector<UserProfile> profiles_;
  std::vector<UserState> states_;
  std::vector<float> interests_;
};

}  // namespace mtf
