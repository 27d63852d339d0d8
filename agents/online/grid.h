// Grid search over constant fusion actions (the oldest MTF tuning method both
// papers mention: "iterate over all combinations" and keep the best in A/B
// tests). A regular grid of `levels` values per searched dimension, the other
// dimensions fixed; K points evaluated per round in a seeded random order.
// After a full pass the grid is visited again in a new order, and a point's
// value is the user-weighted mean of all its scores, so further rounds reduce
// the noise of the comparison.
//
// Hyperparameters (key: default, range):
//   candidates 4 [1, 4096]: K.
//   levels 3 [2, 1001]: values per searched dimension, evenly spaced over
//     [-1, 1] (3: -1, 0, 1).
//   dims []: the searched action dimensions, distinct integers in [0, d);
//     [] = the first min(2, d).
//   center 0.0 [-1, 1]: the value of the other dimensions.
// At most 1,000,000 grid points (levels ^ |dims|).
// Streams: pass p's order from (seed, kAgentInit, p).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "agents/online/online_learner.h"

namespace mtf::agents {

class GridSearch final : public OnlineLearner {
 public:
  static constexpr const char* kName = "grid";
  /// Throws std::invalid_argument for bad hyperparameters, naming "grid.<key>".
  GridSearch(const nlohmann::json& hyperparameters, int action_dim, PolicyPtr baseline,
             std::uint64_t seed);

  std::string name() const override { return kName; }
  int candidates_per_round() const override { return k_; }
  std::vector<PolicyPtr> propose() override;
  void observe(std::span<const double> scores, std::span<const std::int64_t> users) override;
  /// The grid point with the highest mean score (ties: the lower grid index);
  /// before any evaluation, the baseline (or the grid's centre point without one).
  PolicyPtr best() const override { return best_; }
  int rounds_done() const override { return rounds_; }
  nlohmann::json describe() const override;

  /// Number of grid points, levels ^ |dims|.
  std::int64_t grid_size() const { return size_; }
  /// The action of grid point `index` (mixed radix over dims, first dim fastest).
  std::vector<float> point(std::int64_t index) const;

 private:
  std::int64_t visit(std::int64_t i);  // grid index of the i-th visit overall

  nlohmann::json resolved_;
  int d_ = 0, k_ = 4, levels_ = 3;
  float center_ = 0.0f;
  std::vector<int> dims_;
  std::int64_t size_ = 0;
  std::uint64_t seed_;
  std::int64_t next_visit_ = 0;      // visits proposed and observed so far
  std::vector<std::int64_t> order_;  // the current pass's permutation
  std::int64_t order_pass_ = -1;
  std::vector<std::int64_t> pending_;
  bool has_pending_ = false;
  std::vector<double> sum_;     // user-weighted score sums per grid point
  std::vector<double> weight_;  // users per grid point
  std::int64_t best_index_ = -1;
  int rounds_ = 0;
  PolicyPtr best_;
};

}  // namespace mtf::agents
