// Evolution strategies (IntegratedRL-MTF's production benchmark: "takes user profile
// features as its model input to generate personalised fusion weights" and
// "updates its model parameters through a process of alternating mutation and
// selection"; BatchRL-MTF: "search the optimal network parameters through natural
// gradient"). This is the OpenAI-style ES of Salimans et al. (2017, "Evolution
// Strategies as a Scalable Alternative to Reinforcement Learning"): antithetic
// Gaussian perturbations of the parameters, centred-rank fitness shaping, and
// a stochastic-gradient step (Adam by default) on the shaped estimate
//   g = 1 / (2 P sigma) * sum_i (u(theta + sigma e_i) - u(theta - sigma e_i)) e_i.
// The policy is ResidualMlpPolicy: the production baseline plus a bounded
// residual, with the last layer starting at zero so round 0 is the baseline.
//
// Hyperparameters (key: default, range):
//   pairs 4 [1, 512]: antithetic pairs P; K = 2 P candidates per round.
//   hidden 8 [1, 64]: hidden tanh units H.
//   scale 0.3 (0, 2]: bound of the residual per action dimension.
//   learning_rate 0.05 (0, 10]: the optimiser's step size.
//   noise_std 0.05 (0, 10]: sigma, the parameter perturbation scale.
//   weight_decay 0.0 [0, 1]: L2 coefficient subtracted from the gradient
//     (g -= weight_decay * theta; Salimans et al. used 0.005).
//   optimizer "adam": "adam" (beta1 0.9, beta2 0.999, eps 1e-8) or "sgd".
//   rank_shaping true: centred ranks in [-0.5, 0.5] (ties share their mean
//     rank); false: z-scores of the round's scores.
//   state_scaling "auto": "features" maps each feature's documented range
//     (their ranges in core/state_features.h) onto [-1, 1] and needs state_dim = kStateDim;
//     "none" feeds raw states; "auto" is "features" when state_dim = kStateDim.
// Streams: network init from (seed, kAgentInit); round r's perturbations from
// (seed, kAgentNoise, r).
#pragma once

#include <Eigen/Dense>
#include <nlohmann/json.hpp>
#include <vector>

#include "agents/online/online_learner.h"
#include "agents/online/online_policies.h"

namespace mtf::agents {

class EvolutionStrategy final : public OnlineLearner {
 public:
  static constexpr const char* kName = "es";
  /// Throws std::invalid_argument for bad hyperparameters (naming "es.<key>"),
  /// a null baseline or a baseline whose action_dim differs from action_dim.
  EvolutionStrategy(const nlohmann::json& hyperparameters, int state_dim, int action_dim,
                    PolicyPtr baseline, std::uint64_t seed);

  std::string name() const override { return kName; }
  int candidates_per_round() const override { return 2 * pairs_; }
  std::vector<PolicyPtr> propose() override;
  void observe(std::span<const double> scores, std::span<const std::int64_t> users) override;
  PolicyPtr best() const override { return best_; }
  int rounds_done() const override { return rounds_; }
  nlohmann::json describe() const override;

  /// The current mean parameters theta (ResidualNetShape layout).
  const Eigen::VectorXf& parameters() const { return theta_; }
  const ResidualNetShape& shape() const { return shape_; }

 private:
  PolicyPtr make_policy(const Eigen::VectorXf& params, const std::string& name) const;
  void draw_noise();

  nlohmann::json resolved_;
  PolicyPtr baseline_;
  std::uint64_t seed_;
  ResidualNetShape shape_;
  int pairs_ = 4;
  float lr_ = 0.05f, sigma_ = 0.05f, weight_decay_ = 0.0f;
  bool adam_ = true, rank_shaping_ = true;
  std::vector<float> centre_, half_width_;  // empty: no scaling
  Eigen::VectorXf theta_;
  Eigen::VectorXd adam_m_, adam_v_;
  std::int64_t adam_t_ = 0;
  Eigen::MatrixXf noise_;  // param_count x P, the pending round's e_i
  bool pending_ = false;
  int rounds_ = 0;
  PolicyPtr best_;
  double last_mean_ = 0.0, last_max_ = 0.0;
};

}  // namespace mtf::agents
