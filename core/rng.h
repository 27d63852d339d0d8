// Explicit, seeded random streams.
//
// Every random draw in the testbed comes from an `Rng` that was derived from the
// scenario's master seed and a named purpose (user, component, day, agent...), so
// a run is reproducible and independent of how work is split across threads.
// The engine is xoshiro256++ (small state, fast to seed per user); distributions
// come from Boost.Random, whose algorithms are fixed across standard libraries.
#pragma once

#include <array>
#include <cstdint>
#include <limits>

namespace mtf {

/// SplitMix64 finaliser: a bijective 64-bit mix (used to derive seeds and hashes).
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// Named purposes of random streams. Values are part of the on-disk contract of
/// reproducibility: never renumber, only append.
enum class Stream : std::uint64_t {
  kCatalogue = 1,
  kTopicGraph = 2,
  kUserProfile = 3,
  kUserBehaviour = 4,
  kRetrieval = 5,
  kPolicy = 6,
  kExploration = 7,
  kMtlNoise = 8,
  kGroupAssignment = 9,
  kAgentInit = 10,
  kAgentBatch = 11,
  kAgentNoise = 12,
  kBenchmark = 13,
  kInterestDrift = 14,
  kOffPolicyEvaluation = 15,  ///< agents/ope.h: estimator networks, minibatches, target-policy draws
  kExperiment = 16,  ///< protocol engine: user samples of stages, agent seeds, evaluation draws
};

/// Derives a 64-bit seed from the master seed, a purpose and up to two indices
/// (for example a user id and a day). Distinct inputs give independent streams.
constexpr std::uint64_t derive_seed(std::uint64_t master, Stream purpose, std::uint64_t a = 0,
                                    std::uint64_t b = 0) noexcept {
  std::uint64_t h = mix64(master ^ 0x6a09e667f3bcc909ULL);
  h = mix64(h ^ static_cast<std::uint64_t>(purpose));
  h = mix64(h ^ a);
  h = mix64(h ^ (b + 0x3c6ef372fe94f82bULL));
  return h;
}

/// xoshiro256++ engine; satisfies UniformRandomBitGenerator so Boost.Random
/// distributions accept it.
class Rng {
 public:
  using result_type = std::uint64_t;

  explicit Rng(std::uint64_t seed = 0) noexcept { reseed(seed); }
  Rng(std::uint64_t master, Stream purpose, std::uint64_t a = 0, std::uint64_t b = 0) noexcept {
    reseed(derive_seed(master, purpose, a, b));
  }

  void reseed(std::uint64_t seed) noexcept {
    std::uint64_t x = seed;
    for (auto& w : s_) {
      x += 0x9e3779b97f4a7c15ULL;
      w = mix64(x);
    }
  }

  /// The engine's whole state (for checkpoints): an engine given it with
  /// set_state() continues the stream exactly where this one is.
  std::array<std::uint64_t, 4> state() const noexcept { return {s_[0], s_[1], s_[2], s_[3]}; }
  /// Restores a state from state(). An all-zero state is not one xoshiro can
  /// reach (it would only give zeros); callers restore states they saved.
  void set_state(const std::array<std::uint64_t, 4>& s) noexcept {
    for (int i = 0; i < 4; ++i) s_[i] = s[static_cast<std::size_t>(i)];
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  result_type operator()() noexcept {
    const std::uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform float in [0, 1) from the top 24 bits (exact, no rounding to 1).
  float uniform01() noexcept { return static_cast<float>((*this)() >> 40) * 0x1.0p-24f; }
  /// Uniform double in [0, 1) from the top 53 bits.
  double uniform01d() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n) by multiply-shift (Lemire); bias < n / 2^32, negligible for n << 2^32.
  std::uint32_t below(std::uint32_t n) noexcept {
    return static_cast<std::uint32_t>(((*this)() >> 32) * static_cast<std::uint64_t>(n) >> 32);
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::uint64_t s_[4];
};

}  // namespace mtf
