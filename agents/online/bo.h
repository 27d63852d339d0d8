// Bayesian optimisation of one constant fusion action for all users (BatchRL-MTF's
// BO baseline: a Gaussian process over the fusion weights, sampled "with upper
// confidence bound"; IntegratedRL-MTF cites Mockus 1975). Each round fits a GP
// (gaussian_process.h) to every (action, score) pair seen so far, with length
// scales and noise chosen by marginal likelihood, and proposes K actions by
// maximising an acquisition function; the K - 1 later candidates of a round are
// chosen against fantasised observations of the earlier ones (kriging believer:
// the posterior mean; constant liar: the worst score seen, "CL-min";
// Ginsbourger, Le Riche & Carraro 2010).
//
// Hyperparameters (key: default, range):
//   candidates 4 [1, 256]: K.
//   acquisition "ucb": "ucb" = mu + sqrt(beta) sd (GP-UCB, Srinivas et al. 2010)
//     or "ei" = expected improvement over the best posterior mean at the
//     evaluated points plus xi * y_scale (Jones et al. 1998).
//   beta 2.0 [0, 100]: UCB's exploration weight (beta = 2: 1.41 sd).
//   xi 0.01 [0, 10]: EI's margin, in standard deviations of the scores.
//   kernel "isotropic": "isotropic" (one length scale) or "ard" (one per
//     dimension; coordinate search, see GpFitOptions).
//   batch "kriging_believer": or "constant_liar".
//   random_points 4096 [16, 1000000]: uniform points in [-1, 1]^d scored per
//     candidate; the best, and the incumbent, then seed a local search:
//   local_points 256 [0, 1000000]: Gaussian perturbations of the best point so
//     far, in 4 stages of local_points / 4 with sd 0.2, 0.1, 0.05, 0.025.
//   init_radius 0.5 (0, 2]: the first round is the start point plus K - 1
//     points of a Latin hypercube in [start - r, start + r] clipped to [-1, 1].
//   start []: the start point; [] = the baseline's action for a user without
//     history (an all-zero state with the bias feature 1; the production rule's
//     population-wide weights), or 0 without a baseline; else d numbers in [-1, 1].
//   noise_aware true: a score's noise variance is weighted by mean(users) / users.
// Streams: round r's design and acquisition search from (seed, kAgentNoise, r).
// Cost with n observations: observe() fits 72 (l, g) pairs at O(n^3) each
// (isotropic); propose() scores K * (random_points + local_points) points at
// O(n^2) each.
#pragma once

#include <Eigen/Dense>
#include <nlohmann/json.hpp>
#include <vector>

#include "agents/online/gaussian_process.h"
#include "agents/online/online_learner.h"

namespace mtf::agents {

class BayesianOptimisation final : public OnlineLearner {
 public:
  static constexpr const char* kName = "bo";
  /// Throws std::invalid_argument for bad hyperparameters, naming "bo.<key>".
  BayesianOptimisation(const nlohmann::json& hyperparameters, int state_dim, int action_dim,
                       PolicyPtr baseline, std::uint64_t seed);

  std::string name() const override { return kName; }
  int candidates_per_round() const override { return k_; }
  std::vector<PolicyPtr> propose() override;
  void observe(std::span<const double> scores, std::span<const std::int64_t> users) override;
  PolicyPtr best() const override { return best_; }
  int rounds_done() const override { return rounds_; }
  nlohmann::json describe() const override;

  /// The GP fitted at the last observe() (empty before the first).
  const GaussianProcess& model() const { return gp_; }
  /// The action best() deploys.
  const Eigen::VectorXd& best_action() const { return best_x_; }
  /// The acquisition (see the header comment) of the columns of X under `gp`;
  /// `incumbent` is EI's reference (the best posterior mean, original units).
  Eigen::VectorXd acquisition(const GaussianProcess& gp, const Eigen::MatrixXd& X,
                              double incumbent) const;

 private:
  Eigen::MatrixXd initial_design(Rng& rng) const;
  Eigen::VectorXd maximise_acquisition(const GaussianProcess& gp, double incumbent, Rng& rng) const;
  Eigen::MatrixXd next_batch();
  Eigen::VectorXd noise_weights() const;

  nlohmann::json resolved_;
  int d_ = 0, k_ = 4;
  bool ucb_ = true, ard_ = false, kriging_believer_ = true, noise_aware_ = true;
  double beta_ = 2.0, xi_ = 0.01, init_radius_ = 0.5;
  int random_points_ = 4096, local_points_ = 256;
  std::uint64_t seed_;
  Eigen::VectorXd start_;
  Eigen::MatrixXd X_;                // d x n evaluated actions
  Eigen::VectorXd y_;                // n scores
  std::vector<std::int64_t> users_;  // n user counts
  GaussianProcess gp_;
  Eigen::MatrixXd pending_;  // d x K, valid when has_pending_
  bool has_pending_ = false;
  int rounds_ = 0;
  Eigen::VectorXd best_x_;
  double best_mean_ = 0.0;
  PolicyPtr best_;
};

}  // namespace mtf::agents
