// OpenAI-style evolution strategies over a residual policy network (see es.h).
#include "agents/online/es.h"

#include <algorithm>
#include <boost/random/normal_distribution.hpp>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "agents/hyperparameters.h"
#include "agents/online/online_detail.h"

namespace mtf::agents {
namespace {

const nlohmann::json& es_defaults() {
  static const nlohmann::json kDefaults = {
      {"pairs", 4},
      {"hidden", 8},
      {"scale", 0.3},
      {"learning_rate", 0.05},
      {"noise_std", 0.05},
      {"weight_decay", 0.0},
      {"optimizer", "adam"},
      {"rank_shaping", true},
      {"state_scaling", "auto"},
  };
  return kDefaults;
}

// Centred ranks in [-0.5, 0.5]: rank / (n - 1) - 0.5, ties sharing their mean rank.
Eigen::VectorXd centred_ranks(std::span<const double> x) {
  const auto n = static_cast<Eigen::Index>(x.size());
  std::vector<Eigen::Index> order(x.size());
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  std::stable_sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) {
    return x[static_cast<std::size_t>(a)] < x[static_cast<std::size_t>(b)];
  });
  Eigen::VectorXd u(n);
  for (Eigen::Index i = 0; i < n;) {
    Eigen::Index j = i;
    while (j + 1 < n && x[static_cast<std::size_t>(order[static_cast<std::size_t>(j + 1)])] ==
                            x[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])])
      ++j;
    const double rank = 0.5 * static_cast<double>(i + j);
    for (Eigen::Index k = i; k <= j; ++k) u(order[static_cast<std::size_t>(k)]) = rank;
    i = j + 1;
  }
  if (n > 1)
    u = u.array() / static_cast<double>(n - 1) - 0.5;
  else
    u.setZero();
  return u;
}

}  // namespace

EvolutionStrategy::EvolutionStrategy(const nlohmann::json& hyperparameters, int state_dim,
                                     int action_dim, PolicyPtr baseline, std::uint64_t seed)
    : baseline_(std::move(baseline)), seed_(seed) {
  const Hyperparameters hp(kName, es_defaults(), hyperparameters);
  resolved_ = hp.resolved();
  pairs_ = hp.integer("pairs", 1, 512);
  shape_.state_dim = state_dim;
  shape_.action_dim = action_dim;
  shape_.hidden = hp.integer("hidden", 1, ResidualNetShape::kMaxHidden);
  shape_.scale = hp.number("scale", 0.0, 2.0, true);
  lr_ = hp.number("learning_rate", 0.0, 10.0, true);
  sigma_ = hp.number("noise_std", 0.0, 10.0, true);
  weight_decay_ = hp.number("weight_decay", 0.0, 1.0);
  adam_ = hp.choice("optimizer", {"adam", "sgd"}) == "adam";
  rank_shaping_ = hp.flag("rank_shaping");
  const std::string scaling = hp.choice("state_scaling", {"auto", "features", "none"});
  if (!baseline_)
    throw std::invalid_argument(
        "es: baseline: ES starts from the production policy; pass a non-null baseline");
  if (baseline_->action_dim() != action_dim)
    throw std::invalid_argument("es: baseline: its action_dim " +
                                std::to_string(baseline_->action_dim()) +
                                " differs from action_dim " + std::to_string(action_dim));
  if (scaling == "features" && state_dim != kStateDim)
    throw std::invalid_argument("es.state_scaling: \"features\" needs the simulator's " +
                                std::to_string(kStateDim) + " state features, got state_dim " +
                                std::to_string(state_dim) + "; use \"none\" or \"auto\"");
  if (scaling != "none" && state_dim == kStateDim) {
    for (const StateFeature& r : kStateFeatures) {
      centre_.push_back(0.5f * (r.lo + r.hi));
      half_width_.push_back(0.5f * (r.hi - r.lo));
    }
  }

  // First layer fan-in scaled (the scaled inputs are of order 1); the output
  // layer starts at zero so that the residual is 0 and round 0 is the baseline.
  const int S = state_dim, H = shape_.hidden;
  theta_ = Eigen::VectorXf::Zero(shape_.param_count());
  Rng rng(seed_, Stream::kAgentInit);
  boost::random::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(S)));
  for (int i = 0; i < H * S; ++i) theta_(i) = normal(rng);
  adam_m_ = Eigen::VectorXd::Zero(theta_.size());
  adam_v_ = Eigen::VectorXd::Zero(theta_.size());
  best_ = make_policy(theta_, kName);
}

PolicyPtr EvolutionStrategy::make_policy(const Eigen::VectorXf& params,
                                         const std::string& name) const {
  return std::make_shared<ResidualMlpPolicy>(
      name, baseline_, shape_,
      std::span<const float>(params.data(), static_cast<std::size_t>(params.size())), centre_,
      half_width_);
}

void EvolutionStrategy::draw_noise() {
  Rng rng(seed_, Stream::kAgentNoise, static_cast<std::uint64_t>(rounds_));
  boost::random::normal_distribution<float> normal(0.0f, 1.0f);
  noise_.resize(theta_.size(), pairs_);
  for (Eigen::Index p = 0; p < noise_.cols(); ++p)
    for (Eigen::Index i = 0; i < noise_.rows(); ++i) noise_(i, p) = normal(rng);
}

std::vector<PolicyPtr> EvolutionStrategy::propose() {
  if (!pending_) {
    draw_noise();
    pending_ = true;
  }
  std::vector<PolicyPtr> out;
  out.reserve(static_cast<std::size_t>(2 * pairs_));
  for (int p = 0; p < pairs_; ++p) {
    out.push_back(
        make_policy(theta_ + sigma_ * noise_.col(p), std::string(kName) + "+" + std::to_string(p)));
    out.push_back(
        make_policy(theta_ - sigma_ * noise_.col(p), std::string(kName) + "-" + std::to_string(p)));
  }
  return out;
}

void EvolutionStrategy::observe(std::span<const double> scores,
                                std::span<const std::int64_t> users) {
  detail::check_observation(kName, candidates_per_round(), pending_, scores, users);
  Eigen::VectorXd u;
  if (rank_shaping_) {
    u = centred_ranks(scores);
  } else {
    // An owned (aligned) copy: Eigen's vectorised reductions over a Map peel
    // according to the data's address, so their rounding would depend on where
    // the caller's allocator put the scores (seen as a thread-count dependence).
    const Eigen::VectorXd s = Eigen::Map<const Eigen::VectorXd>(scores.data(),
                                                                static_cast<Eigen::Index>(scores.size()));
    const double sd = std::sqrt((s.array() - s.mean()).square().mean());
    u = sd > 0.0 ? Eigen::VectorXd((s.array() - s.mean()) / sd) : Eigen::VectorXd::Zero(s.size());
  }
  // Candidate 2p is theta + sigma e_p, candidate 2p + 1 is theta - sigma e_p.
  Eigen::VectorXd diff(pairs_);
  for (int p = 0; p < pairs_; ++p) diff(p) = u(2 * p) - u(2 * p + 1);
  Eigen::VectorXd g = noise_.cast<double>() * diff / (2.0 * pairs_ * static_cast<double>(sigma_));
  g -= static_cast<double>(weight_decay_) * theta_.cast<double>();
  Eigen::VectorXd step;
  if (adam_) {
    constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
    ++adam_t_;
    adam_m_ = kBeta1 * adam_m_ + (1.0 - kBeta1) * g;
    adam_v_ = kBeta2 * adam_v_ + (1.0 - kBeta2) * g.cwiseAbs2();
    const double c1 = 1.0 - std::pow(kBeta1, static_cast<double>(adam_t_));
    const double c2 = 1.0 - std::pow(kBeta2, static_cast<double>(adam_t_));
    step =
        static_cast<double>(lr_) * (adam_m_ / c1).array() / ((adam_v_ / c2).array().sqrt() + kEps);
  } else {
    step = static_cast<double>(lr_) * g;
  }
  theta_ += step.cast<float>();  // ascent: higher scores are better
  const Eigen::VectorXd s = Eigen::Map<const Eigen::VectorXd>(scores.data(),
                                                              static_cast<Eigen::Index>(scores.size()));
  last_mean_ = s.mean();  // an owned copy, as above: the same bits wherever the scores lie
  last_max_ = s.maxCoeff();
  pending_ = false;
  ++rounds_;
  best_ = make_policy(theta_, kName);
}

nlohmann::json EvolutionStrategy::describe() const {
  nlohmann::json j;
  j["type"] = kName;
  j["hyperparameters"] = resolved_;
  j["candidates_per_round"] = candidates_per_round();
  j["rounds_done"] = rounds_;
  j["param_count"] = shape_.param_count();
  j["param_norm"] = theta_.norm();
  j["state_scaling"] = centre_.empty() ? "none" : "features";
  if (rounds_ > 0) j["last_round"] = {{"mean_score", last_mean_}, {"max_score", last_max_}};
  return j;
}

}  // namespace mtf::agents
