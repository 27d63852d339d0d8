// Internal helpers shared by the online learners' implementations (not part of
// the public API).
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

namespace mtf::agents::detail {

/// Checks one observe() call: a proposal is pending, K scores and K user counts,
/// finite scores and user counts >= 1. Messages name "<learner>.observe".
inline void check_observation(const std::string& learner, int k, bool pending,
                              std::span<const double> scores, std::span<const std::int64_t> users) {
  const std::string where = learner + ".observe: ";
  if (!pending)
    throw std::logic_error(where + "no proposal is pending; call propose() before observe()");
  if (static_cast<int>(scores.size()) != k || static_cast<int>(users.size()) != k)
    throw std::invalid_argument(
        where + "expected " + std::to_string(k) + " scores and " + std::to_string(k) +
        " user counts (one per candidate of propose()), got " + std::to_string(scores.size()) +
        " and " + std::to_string(users.size()));
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i]))
      throw std::invalid_argument(where + "scores[" + std::to_string(i) + "] is not finite (" +
                                  std::to_string(scores[i]) +
                                  "); pass the group's mean per-user reward");
    if (users[i] < 1)
      throw std::invalid_argument(where + "users[" + std::to_string(i) +
                                  "] = " + std::to_string(users[i]) +
                                  "; every candidate needs at least one user behind its score");
  }
}

}  // namespace mtf::agents::detail
