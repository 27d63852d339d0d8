// Bayesian optimisation of a constant fusion action (see bo.h).
#include "agents/online/bo.h"

#include <algorithm>
#include <boost/random/normal_distribution.hpp>
#include <cmath>
#include <numbers>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "agents/hyperparameters.h"
#include "agents/online/online_detail.h"
#include "agents/online/online_policies.h"
#include "core/state_features.h"

namespace mtf::agents {
namespace {

const nlohmann::json& bo_defaults() {
  static const nlohmann::json kDefaults = {
      {"candidates", 4},       {"acquisition", "ucb"},
      {"beta", 2.0},           {"xi", 0.01},
      {"kernel", "isotropic"}, {"batch", "kriging_believer"},
      {"random_points", 4096}, {"local_points", 256},
      {"init_radius", 0.5},    {"start", nlohmann::json::array()},
      {"noise_aware", true},
  };
  return kDefaults;
}

PolicyPtr constant_policy(const Eigen::VectorXd& x) {
  std::vector<float> a(static_cast<std::size_t>(x.size()));
  for (Eigen::Index i = 0; i < x.size(); ++i)
    a[static_cast<std::size_t>(i)] = static_cast<float>(x(i));
  return std::make_shared<FixedActionPolicy>(BayesianOptimisation::kName, std::move(a));
}

// The baseline's action for a user with no history: all features 0 but the bias feature 1.
Eigen::VectorXd no_history_action(const Policy& baseline, int state_dim, int d) {
  std::vector<float> s(static_cast<std::size_t>(state_dim), 0.0f);
  if (state_dim == kStateDim) s[kBiasFeature] = 1.0f;
  std::vector<float> a(static_cast<std::size_t>(d), 0.0f);
  Rng rng(0);  // the production rule is deterministic; the stream is never drawn from
  baseline.act(s, a, rng, nullptr);
  Eigen::VectorXd x(d);
  for (int i = 0; i < d; ++i)
    x(i) = std::clamp(static_cast<double>(a[static_cast<std::size_t>(i)]), -1.0, 1.0);
  return x;
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }
double normal_pdf(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2.0 * std::numbers::pi); }

}  // namespace

BayesianOptimisation::BayesianOptimisation(const nlohmann::json& hyperparameters, int state_dim,
                                           int action_dim, PolicyPtr baseline, std::uint64_t seed)
    : d_(action_dim), seed_(seed) {
  const Hyperparameters hp(kName, bo_defaults(), hyperparameters);
  resolved_ = hp.resolved();
  k_ = hp.integer("candidates", 1, 256);
  ucb_ = hp.choice("acquisition", {"ucb", "ei"}) == "ucb";
  beta_ = hp.number("beta", 0.0, 100.0);
  xi_ = hp.number("xi", 0.0, 10.0);
  ard_ = hp.choice("kernel", {"isotropic", "ard"}) == "ard";
  kriging_believer_ =
      hp.choice("batch", {"kriging_believer", "constant_liar"}) == "kriging_believer";
  random_points_ = hp.integer("random_points", 16, 1000000);
  local_points_ = hp.integer("local_points", 0, 1000000);
  init_radius_ = hp.number("init_radius", 0.0, 2.0, true);
  noise_aware_ = hp.flag("noise_aware");
  const nlohmann::json& start = resolved_.at("start");
  if (!start.empty()) {
    bool ok = static_cast<int>(start.size()) == d_;
    for (const auto& v : start)
      ok = ok && v.is_number() && v.get<double>() >= -1.0 && v.get<double>() <= 1.0;
    if (!ok)
      throw std::invalid_argument("bo.start: expected [] (start from the baseline) or a list of " +
                                  std::to_string(d_) + " numbers in [-1, 1], got " + start.dump());
    start_.resize(d_);
    for (int i = 0; i < d_; ++i) start_(i) = start[static_cast<std::size_t>(i)].get<double>();
  } else if (baseline) {
    if (baseline->action_dim() != d_)
      throw std::invalid_argument("bo: baseline: its action_dim " +
                                  std::to_string(baseline->action_dim()) +
                                  " differs from action_dim " + std::to_string(d_));
    start_ = no_history_action(*baseline, state_dim, d_);
  } else {
    start_ = Eigen::VectorXd::Zero(d_);
  }
  X_.resize(d_, 0);
  best_x_ = start_;
  best_ = constant_policy(best_x_);
}

Eigen::VectorXd BayesianOptimisation::noise_weights() const {
  const auto n = static_cast<Eigen::Index>(users_.size());
  Eigen::VectorXd w = Eigen::VectorXd::Ones(n);
  if (!noise_aware_ || n == 0) return w;
  double mean = 0.0;
  for (std::int64_t u : users_) mean += static_cast<double>(u);
  mean /= static_cast<double>(n);
  for (Eigen::Index i = 0; i < n; ++i)
    w(i) = mean / static_cast<double>(users_[static_cast<std::size_t>(i)]);
  return w;
}

Eigen::VectorXd BayesianOptimisation::acquisition(const GaussianProcess& gp,
                                                  const Eigen::MatrixXd& X,
                                                  double incumbent) const {
  Eigen::VectorXd mean, var;
  gp.predict(X, mean, &var);
  const Eigen::ArrayXd sd = var.array().sqrt();
  if (ucb_) return (mean.array() + std::sqrt(beta_) * sd).matrix();
  Eigen::VectorXd ei(X.cols());
  for (Eigen::Index i = 0; i < X.cols(); ++i) {
    const double imp = mean(i) - incumbent - xi_ * gp.y_scale();
    if (sd(i) < 1e-12) {
      ei(i) = std::max(imp, 0.0);
    } else {
      const double z = imp / sd(i);
      ei(i) = imp * normal_cdf(z) + sd(i) * normal_pdf(z);
    }
  }
  return ei;
}

Eigen::MatrixXd BayesianOptimisation::initial_design(Rng& rng) const {
  Eigen::MatrixXd P(d_, k_);
  P.col(0) = start_;
  const int m = k_ - 1;
  for (int j = 0; j < d_ && m > 0; ++j) {
    const double lo = std::max(-1.0, start_(j) - init_radius_),
                 hi = std::min(1.0, start_(j) + init_radius_);
    std::vector<int> strata(static_cast<std::size_t>(m));
    std::iota(strata.begin(), strata.end(), 0);
    for (int i = m - 1; i > 0; --i)
      std::swap(strata[static_cast<std::size_t>(i)],
                strata[rng.below(static_cast<std::uint32_t>(i + 1))]);
    for (int i = 0; i < m; ++i)
      P(j, i + 1) = lo + (hi - lo) * (strata[static_cast<std::size_t>(i)] + rng.uniform01d()) / m;
  }
  return P;
}

Eigen::VectorXd BayesianOptimisation::maximise_acquisition(const GaussianProcess& gp,
                                                           double incumbent, Rng& rng) const {
  Eigen::MatrixXd C(d_, random_points_ + 1);
  for (int i = 0; i < random_points_; ++i)
    for (int j = 0; j < d_; ++j) C(j, i) = 2.0 * rng.uniform01d() - 1.0;
  C.col(random_points_) = best_x_;
  Eigen::VectorXd a = acquisition(gp, C, incumbent);
  Eigen::Index arg = 0;
  double best = a.maxCoeff(&arg);
  Eigen::VectorXd x = C.col(arg);
  const int per_stage = local_points_ / 4;
  double sd = 0.2;
  boost::random::normal_distribution<double> normal(0.0, 1.0);
  for (int stage = 0; stage < 4 && per_stage > 0; ++stage, sd *= 0.5) {
    Eigen::MatrixXd L(d_, per_stage);
    for (int i = 0; i < per_stage; ++i)
      for (int j = 0; j < d_; ++j) L(j, i) = std::clamp(x(j) + sd * normal(rng), -1.0, 1.0);
    const Eigen::VectorXd b = acquisition(gp, L, incumbent);
    Eigen::Index li = 0;
    if (b.maxCoeff(&li) > best) {
      best = b(li);
      x = L.col(li);
    }
  }
  return x;
}

Eigen::MatrixXd BayesianOptimisation::next_batch() {
  Rng rng(seed_, Stream::kAgentNoise, static_cast<std::uint64_t>(rounds_));
  if (X_.cols() == 0) return initial_design(rng);
  Eigen::MatrixXd P(d_, k_);
  Eigen::MatrixXd Xf = X_;
  Eigen::VectorXd yf = y_, wf = noise_weights();
  GaussianProcess gp = gp_;
  const double lie = y_.minCoeff();
  for (int k = 0; k < k_; ++k) {
    Eigen::VectorXd mean_at_data;
    gp.predict(Xf, mean_at_data);
    P.col(k) = maximise_acquisition(gp, mean_at_data.maxCoeff(), rng);
    if (k + 1 == k_) break;
    Eigen::VectorXd m;
    gp.predict(P.col(k), m);
    Xf.conservativeResize(Eigen::NoChange, Xf.cols() + 1);
    Xf.col(Xf.cols() - 1) = P.col(k);
    yf.conservativeResize(yf.size() + 1);
    yf(yf.size() - 1) = kriging_believer_ ? m(0) : lie;
    wf.conservativeResize(wf.size() + 1);
    wf(wf.size() - 1) = 1.0;
    gp.condition(Xf, yf, wf, gp_.hyper());
  }
  return P;
}

std::vector<PolicyPtr> BayesianOptimisation::propose() {
  if (!has_pending_) {
    pending_ = next_batch();
    has_pending_ = true;
  }
  std::vector<PolicyPtr> out;
  for (int k = 0; k < k_; ++k) out.push_back(constant_policy(pending_.col(k)));
  return out;
}

void BayesianOptimisation::observe(std::span<const double> scores,
                                   std::span<const std::int64_t> users) {
  detail::check_observation(kName, k_, has_pending_, scores, users);
  const Eigen::Index n = X_.cols();
  X_.conservativeResize(Eigen::NoChange, n + k_);
  X_.rightCols(k_) = pending_;
  y_.conservativeResize(n + k_);
  for (int k = 0; k < k_; ++k) {
    y_(n + k) = scores[static_cast<std::size_t>(k)];
    users_.push_back(users[static_cast<std::size_t>(k)]);
  }
  GpFitOptions options;
  options.ard = ard_;
  gp_.fit(X_, y_, noise_weights(), options);
  Eigen::VectorXd mean;
  gp_.predict(X_, mean);
  Eigen::Index arg = 0;
  best_mean_ = mean.maxCoeff(&arg);
  best_x_ = X_.col(arg);
  best_ = constant_policy(best_x_);
  has_pending_ = false;
  ++rounds_;
}

nlohmann::json BayesianOptimisation::describe() const {
  nlohmann::json j;
  j["type"] = kName;
  j["hyperparameters"] = resolved_;
  j["candidates_per_round"] = k_;
  j["rounds_done"] = rounds_;
  j["observations"] = X_.cols();
  j["start"] = std::vector<double>(start_.data(), start_.data() + start_.size());
  j["best_action"] = std::vector<double>(best_x_.data(), best_x_.data() + best_x_.size());
  if (rounds_ > 0) {
    const GpHyper& h = gp_.hyper();
    j["best_posterior_mean"] = best_mean_;
    j["gp"] = {
        {"length_scales", std::vector<double>(h.length.data(), h.length.data() + h.length.size())},
        {"noise_ratio", h.noise_ratio},
        {"signal_var", h.signal_var},
        {"log_marginal_likelihood", gp_.log_marginal_likelihood()}};
  }
  return j;
}

}  // namespace mtf::agents
