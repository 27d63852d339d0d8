// Grid search over constant fusion actions (see grid.h).
#include "agents/online/grid.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "agents/hyperparameters.h"
#include "agents/online/online_detail.h"
#include "agents/online/online_policies.h"

namespace mtf::agents {
namespace {

const nlohmann::json& grid_defaults() {
  static const nlohmann::json kDefaults = {
      {"candidates", 4}, {"levels", 3}, {"dims", nlohmann::json::array()}, {"center", 0.0}};
  return kDefaults;
}

}  // namespace

GridSearch::GridSearch(const nlohmann::json& hyperparameters, int action_dim, PolicyPtr baseline,
                       std::uint64_t seed)
    : d_(action_dim), seed_(seed) {
  const Hyperparameters hp(kName, grid_defaults(), hyperparameters);
  resolved_ = hp.resolved();
  k_ = hp.integer("candidates", 1, 4096);
  levels_ = hp.integer("levels", 2, 1001);
  center_ = hp.number("center", -1.0, 1.0);
  const nlohmann::json& dims = resolved_.at("dims");
  if (dims.empty()) {
    for (int i = 0; i < std::min(2, d_); ++i) dims_.push_back(i);
  } else {
    for (const auto& v : dims) {
      const bool ok = v.is_number_integer() && v.get<long long>() >= 0 && v.get<long long>() < d_ &&
                      std::find(dims_.begin(), dims_.end(), v.get<int>()) == dims_.end();
      if (!ok)
        throw std::invalid_argument(
            "grid.dims: expected [] (the first two) or distinct integers in [0, " +
            std::to_string(d_ - 1) + "], got " + dims.dump());
      dims_.push_back(v.get<int>());
    }
  }
  size_ = 1;
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    size_ *= levels_;
    if (size_ > 1000000)
      throw std::invalid_argument("grid.levels: levels ^ |dims| = " + std::to_string(levels_) +
                                  " ^ " + std::to_string(dims_.size()) +
                                  " exceeds 1,000,000 grid points; use fewer levels or dims");
  }
  sum_.assign(static_cast<std::size_t>(size_), 0.0);
  weight_.assign(static_cast<std::size_t>(size_), 0.0);
  if (baseline) {
    if (baseline->action_dim() != d_)
      throw std::invalid_argument("grid: baseline: its action_dim " +
                                  std::to_string(baseline->action_dim()) +
                                  " differs from action_dim " + std::to_string(d_));
    best_ = baseline;
  } else {
    best_ = std::make_shared<FixedActionPolicy>(
        kName, std::vector<float>(static_cast<std::size_t>(d_), center_));
  }
}

std::vector<float> GridSearch::point(std::int64_t index) const {
  std::vector<float> a(static_cast<std::size_t>(d_), center_);
  for (int dim : dims_) {
    const auto level = static_cast<int>(index % levels_);
    index /= levels_;
    a[static_cast<std::size_t>(dim)] =
        -1.0f + 2.0f * static_cast<float>(level) / static_cast<float>(levels_ - 1);
  }
  return a;
}

std::int64_t GridSearch::visit(std::int64_t i) {
  const std::int64_t pass = i / size_;
  if (pass != order_pass_) {
    order_.resize(static_cast<std::size_t>(size_));
    std::iota(order_.begin(), order_.end(), std::int64_t{0});
    Rng rng(seed_, Stream::kAgentInit, static_cast<std::uint64_t>(pass));
    for (std::int64_t j = size_ - 1; j > 0; --j)
      std::swap(order_[static_cast<std::size_t>(j)],
                order_[rng.below(static_cast<std::uint32_t>(j + 1))]);
    order_pass_ = pass;
  }
  return order_[static_cast<std::size_t>(i % size_)];
}

std::vector<PolicyPtr> GridSearch::propose() {
  if (!has_pending_) {
    pending_.clear();
    for (int k = 0; k < k_; ++k) pending_.push_back(visit(next_visit_ + k));
    has_pending_ = true;
  }
  std::vector<PolicyPtr> out;
  for (std::int64_t index : pending_)
    out.push_back(std::make_shared<FixedActionPolicy>(kName, point(index)));
  return out;
}

void GridSearch::observe(std::span<const double> scores, std::span<const std::int64_t> users) {
  detail::check_observation(kName, k_, has_pending_, scores, users);
  for (int k = 0; k < k_; ++k) {
    const auto i = static_cast<std::size_t>(pending_[static_cast<std::size_t>(k)]);
    const auto w = static_cast<double>(users[static_cast<std::size_t>(k)]);
    sum_[i] += w * scores[static_cast<std::size_t>(k)];
    weight_[i] += w;
  }
  best_index_ = -1;
  for (std::int64_t i = 0; i < size_; ++i) {
    const auto u = static_cast<std::size_t>(i);
    if (weight_[u] == 0.0) continue;
    if (best_index_ < 0 ||
        sum_[u] / weight_[u] > sum_[static_cast<std::size_t>(best_index_)] /
                                   weight_[static_cast<std::size_t>(best_index_)])
      best_index_ = i;
  }
  best_ = std::make_shared<FixedActionPolicy>(kName, point(best_index_));
  next_visit_ += k_;
  has_pending_ = false;
  ++rounds_;
}

nlohmann::json GridSearch::describe() const {
  nlohmann::json j;
  j["type"] = kName;
  j["hyperparameters"] = resolved_;
  j["candidates_per_round"] = k_;
  j["rounds_done"] = rounds_;
  j["grid_size"] = size_;
  j["dims"] = dims_;
  j["points_evaluated"] =
      std::count_if(weight_.begin(), weight_.end(), [](double w) { return w > 0.0; });
  if (best_index_ >= 0) {
    const auto b = static_cast<std::size_t>(best_index_);
    j["best_action"] = point(best_index_);
    j["best_mean_score"] = sum_[b] / weight_[b];
  }
  return j;
}

}  // namespace mtf::agents
