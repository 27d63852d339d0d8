// Gaussian-process regression for Bayesian optimisation (BatchRL-MTF's BO
// baseline: "fits the prior distribution of the objective function based on
// Gaussian Process Regression"). Zero-mean GP on standardised targets with a
// squared-exponential (RBF) kernel, isotropic or ARD, and a noise term:
//   k(x, x') = sf2 * exp(-1/2 sum_j ((x_j - x'_j) / l_j)^2),  noise_i = sf2 * g * w_i,
// where w_i is a per-observation noise weight (1 = homoscedastic; BO passes
// mean(users) / users_i). The signal variance sf2 is profiled out (its maximum-
// likelihood value is y' (R + g W)^-1 y / n for correlation matrix R), so the
// marginal likelihood is maximised over the length scales and g alone, on a
// small grid (Rasmussen & Williams 2006, sections 2.2 and 5.4).
// Points are columns (d x n), like the batches of agents/nn.
#pragma once

#include <Eigen/Dense>
#include <vector>

namespace mtf::agents {

struct GpHyper {
  Eigen::VectorXd length;     ///< length scale per input dimension (all equal when isotropic)
  double noise_ratio = 1e-6;  ///< g: noise variance / signal variance
  double signal_var = 1.0;    ///< sf2, in standardised units (set by fitting)
};

struct GpFitOptions {
  bool ard = false;  ///< one length scale per dimension (else one for all)
  /// Candidate length scales (input units; BO's inputs span [-1, 1]).
  std::vector<double> length_grid = {0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 1.6, 2.5, 4.0};
  /// Candidate noise ratios g.
  std::vector<double> noise_grid = {1e-6, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0};
  /// ARD: coordinate sweeps over the dimensions after the best isotropic fit.
  int ard_sweeps = 2;
};

class GaussianProcess {
 public:
  /// Chooses the hyperparameters by maximising the marginal likelihood over the
  /// grid, then conditions on the data. X: d x n (n >= 1), y: n, noise_weight:
  /// n positive values (empty = all 1). Isotropic: every (l, g) pair of the
  /// grids. ARD: the best isotropic pair, then `ard_sweeps` passes that set each
  /// l_j in turn to its best grid value, then g again. Ties keep the earlier
  /// candidate, so the choice is deterministic.
  void fit(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, const Eigen::VectorXd& noise_weight,
           const GpFitOptions& options);
  /// Conditions on the data with fixed length scales and noise ratio (sf2 is
  /// re-profiled). Used for the fantasies of batch proposals.
  void condition(const Eigen::MatrixXd& X, const Eigen::VectorXd& y,
                 const Eigen::VectorXd& noise_weight, const GpHyper& hyper);

  /// Posterior mean (original units of y) and, when var is not null, the
  /// posterior variance of the latent function (original units squared, noise
  /// excluded, floored at 0) at the columns of Xs (d x m).
  void predict(const Eigen::MatrixXd& Xs, Eigen::VectorXd& mean,
               Eigen::VectorXd* var = nullptr) const;

  const GpHyper& hyper() const { return hyper_; }
  /// Log marginal likelihood of the standardised targets under hyper().
  double log_marginal_likelihood() const { return lml_; }
  /// The standardisation: y_std = (y - y_mean) / y_scale (y_scale = 1 when the
  /// targets have no spread).
  double y_mean() const { return y_mean_; }
  double y_scale() const { return y_scale_; }
  int size() const { return static_cast<int>(X_.cols()); }

  /// log marginal likelihood of standardised targets ys at X for the given
  /// length scales and noise ratio (sf2 profiled out); -infinity when the
  /// covariance is not positive definite. Exposed for tests.
  static double profile_lml(const Eigen::MatrixXd& X, const Eigen::VectorXd& ys,
                            const Eigen::VectorXd& noise_weight, const Eigen::VectorXd& length,
                            double noise_ratio);

 private:
  void standardise(const Eigen::VectorXd& y);
  Eigen::MatrixXd X_;
  Eigen::VectorXd alpha_;  // (R + g W)^-1 ys
  Eigen::LLT<Eigen::MatrixXd> llt_;
  GpHyper hyper_;
  double lml_ = 0.0;
  double y_mean_ = 0.0, y_scale_ = 1.0;
  Eigen::VectorXd ys_;
};

}  // namespace mtf::agents
