// Drawing the user population (see population.h).
#include "users/population.h"

#include <algorithm>
#include <boost/random/normal_distribution.hpp>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"

namespace mtf {

std::int64_t UserShard::held(std::int64_t users) const {
  if (all()) return users;
  const std::int64_t blocks = (users + block - 1) / block;
  // Whole blocks rank r holds, less the part of the last block that does not exist if it is r's.
  std::int64_t n = (blocks / ranks + (blocks % ranks > rank ? 1 : 0)) * block;
  if (blocks > 0 && (blocks - 1) % ranks == rank) n -= blocks * block - users;
  return n;
}

Population::Population(const PopulationParams& params, int topics, std::uint64_t seed, UserShard shard)
    : topics_(topics), size_(params.size), shard_(shard), segments_(params.segments) {
  if (shard_.ranks < 1 || shard_.rank < 0 || shard_.rank >= shard_.ranks || shard_.block < 1)
    throw std::invalid_argument("Population: a shard needs block >= 1 and 0 <= rank < ranks; got block " +
                                std::to_string(shard_.block) + ", rank " + std::to_string(shard_.rank) + " of " +
                                std::to_string(shard_.ranks));
  if (segments_.empty()) segments_.push_back(SegmentParams{});
  const auto n = static_cast<std::size_t>(shard_.held(size_));
  profiles_.resize(n);
  states_.resize(n);
  interests_.resize(n * static_cast<std::size_t>(topics));
  for (std::int64_t u = 0; u < size_; ++u)
    if (shard_.holds(u))
      profiles_[static_cast<std::size_t>(shard_.local(u))] = draw_profile(segments_, topics, seed, u, interests(u));
}

UserProfile Population::draw_profile(const std::vector<SegmentParams>& segments, int topics,
                                     std::uint64_t seed, std::int64_t u, std::span<float> interests) {
  Rng rng(seed, Stream::kUserProfile, static_cast<std::uint64_t>(u));
  boost::random::normal_distribution<float> normal(0.0f, 1.0f);
  double total = 0;
  for (const auto& s : segments) total += s.share;
  double pick = rng.uniform01d() * total;
  std::size_t seg = 0;
  while (seg + 1 < segments.size() && pick >= segments[seg].share) pick -= segments[seg++].share;
  const SegmentParams& s = segments[seg];

  UserProfile p;
  p.segment = static_cast<std::uint8_t>(seg);
  double a = rng.uniform01d();
  int age = 0;
  while (age < 3 && a >= s.age_mix[age]) a -= s.age_mix[age++];
  p.age_group = static_cast<std::uint8_t>(age);
  p.male = rng.uniform01d() < s.male_prob ? 1 : 0;
  const float spread = static_cast<float>(s.activity_spread);
  p.sessions_per_day =
      static_cast<float>(s.sessions_per_day) * std::exp(spread * normal(rng) - 0.5f * spread * spread);
  p.preferred_hour = std::fmod(static_cast<float>(s.preferred_hour) + 2.0f * normal(rng) + 48.0f, 24.0f);
  p.taste_long = std::clamp(static_cast<float>(s.taste_long) + 0.3f * normal(rng), -1.0f, 1.0f);
  p.clickbait_sensitivity =
      static_cast<float>(s.clickbait_sensitivity) * std::exp(0.3f * normal(rng) - 0.045f);
  p.interaction = static_cast<float>(s.interaction) + 0.5f * normal(rng);
  p.patience = static_cast<float>(s.patience) + 0.3f * normal(rng);

  for (auto& x : interests) x = 0.04f + 0.08f * rng.uniform01();
  // k distinct primary topics (a partial Fisher-Yates shuffle of the topics).
  const int k = std::min(s.interest_topics, topics);
  std::vector<int> order(static_cast<std::size_t>(topics));
  for (int t = 0; t < topics; ++t) order[static_cast<std::size_t>(t)] = t;
  for (int i = 0; i < k; ++i) {
    const int j = i + static_cast<int>(rng.below(static_cast<std::uint32_t>(topics - i)));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    interests[order[static_cast<std::size_t>(i)]] = 0.5f + 0.5f * rng.uniform01();
  }
  return p;
}

}  // namespace mtf
