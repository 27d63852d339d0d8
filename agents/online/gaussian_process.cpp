// Gaussian-process regression with marginal-likelihood grid search (see gaussian_process.h).
#include "agents/online/gaussian_process.h"

#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>

namespace mtf::agents {
namespace {

// Correlation exp(-1/2 ||(a - b) / l||^2) between the columns of A (d x m) and B (d x n): m x n.
Eigen::MatrixXd correlation(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B,
                            const Eigen::VectorXd& length) {
  const Eigen::MatrixXd a = length.cwiseInverse().asDiagonal() * A;
  const Eigen::MatrixXd b = length.cwiseInverse().asDiagonal() * B;
  Eigen::MatrixXd d2 = -2.0 * a.transpose() * b;
  d2.colwise() += a.colwise().squaredNorm().transpose();
  d2.rowwise() += b.colwise().squaredNorm();
  return (-0.5 * d2.cwiseMax(0.0)).array().exp().matrix();
}

Eigen::MatrixXd covariance(const Eigen::MatrixXd& X, const Eigen::VectorXd& w,
                           const Eigen::VectorXd& length, double g) {
  Eigen::MatrixXd K = correlation(X, X, length);
  K.diagonal().array() += g * w.array();
  return K;
}

// sf2 = ys' alpha / n; with no spread in ys the prior's unit variance is kept.
double profiled_signal(const Eigen::VectorXd& ys, const Eigen::VectorXd& alpha) {
  const double q = ys.dot(alpha);
  return q > 0.0 ? q / static_cast<double>(ys.size()) : 1.0;
}

Eigen::VectorXd ones_if_empty(const Eigen::VectorXd& w, Eigen::Index n) {
  assert(w.size() == 0 || w.size() == n);
  return w.size() == 0 ? Eigen::VectorXd::Ones(n) : w;
}

}  // namespace

double GaussianProcess::profile_lml(const Eigen::MatrixXd& X, const Eigen::VectorXd& ys,
                                    const Eigen::VectorXd& noise_weight,
                                    const Eigen::VectorXd& length, double noise_ratio) {
  const Eigen::Index n = X.cols();
  const Eigen::LLT<Eigen::MatrixXd> llt(
      covariance(X, ones_if_empty(noise_weight, n), length, noise_ratio));
  if (llt.info() != Eigen::Success) return -std::numeric_limits<double>::infinity();
  const Eigen::VectorXd alpha = llt.solve(ys);
  const double sf2 = profiled_signal(ys, alpha);
  const double nd = static_cast<double>(n);
  // log N(ys; 0, sf2 K) at sf2's maximum: ys' (sf2 K)^-1 ys = n.
  const double quad = ys.dot(alpha) > 0.0 ? nd : 0.0;
  return -0.5 * nd * std::log(sf2) - llt.matrixLLT().diagonal().array().log().sum() - 0.5 * quad -
         0.5 * nd * std::log(2.0 * std::numbers::pi);
}

void GaussianProcess::standardise(const Eigen::VectorXd& y) {
  y_mean_ = y.mean();
  const double var = (y.array() - y_mean_).square().mean();
  y_scale_ = var > 0.0 ? std::sqrt(var) : 1.0;
  ys_ = (y.array() - y_mean_) / y_scale_;
}

void GaussianProcess::fit(const Eigen::MatrixXd& X, const Eigen::VectorXd& y,
                          const Eigen::VectorXd& noise_weight, const GpFitOptions& options) {
  assert(X.cols() == y.size() && X.cols() >= 1);
  assert(!options.length_grid.empty() && !options.noise_grid.empty());
  standardise(y);
  const Eigen::VectorXd w = ones_if_empty(noise_weight, X.cols());
  const Eigen::Index d = X.rows();
  double best = -std::numeric_limits<double>::infinity();
  Eigen::VectorXd length = Eigen::VectorXd::Constant(d, options.length_grid.front());
  double g = options.noise_grid.back();
  auto consider = [&](const Eigen::VectorXd& l, double ratio) {
    const double v = profile_lml(X, ys_, w, l, ratio);
    if (v > best) {
      best = v;
      length = l;
      g = ratio;
    }
  };
  for (double l : options.length_grid)
    for (double ratio : options.noise_grid) consider(Eigen::VectorXd::Constant(d, l), ratio);
  if (options.ard && d > 1) {
    for (int sweep = 0; sweep < options.ard_sweeps; ++sweep) {
      for (Eigen::Index j = 0; j < d; ++j)
        for (double l : options.length_grid) {
          Eigen::VectorXd trial = length;
          trial(j) = l;
          consider(trial, g);
        }
      const Eigen::VectorXd l = length;
      for (double ratio : options.noise_grid) consider(l, ratio);
    }
  }
  GpHyper h;
  h.length = length;
  h.noise_ratio = g;
  condition(X, y, noise_weight, h);
}

void GaussianProcess::condition(const Eigen::MatrixXd& X, const Eigen::VectorXd& y,
                                const Eigen::VectorXd& noise_weight, const GpHyper& hyper) {
  assert(X.cols() == y.size() && X.cols() >= 1 && hyper.length.size() == X.rows());
  standardise(y);
  X_ = X;
  hyper_ = hyper;
  const Eigen::VectorXd w = ones_if_empty(noise_weight, X.cols());
  // A grid noise ratio can leave duplicated points singular: add jitter until it factors.
  double jitter = 0.0;
  for (int attempt = 0;; ++attempt) {
    llt_.compute(covariance(X, w, hyper.length, hyper.noise_ratio + jitter));
    if (llt_.info() == Eigen::Success || attempt == 12) break;
    jitter = jitter == 0.0 ? 1e-10 : jitter * 10.0;
  }
  hyper_.noise_ratio += jitter;
  alpha_ = llt_.solve(ys_);
  hyper_.signal_var = profiled_signal(ys_, alpha_);
  lml_ = profile_lml(X, ys_, w, hyper_.length, hyper_.noise_ratio);
}

void GaussianProcess::predict(const Eigen::MatrixXd& Xs, Eigen::VectorXd& mean,
                              Eigen::VectorXd* var) const {
  assert(X_.cols() >= 1 && Xs.rows() == X_.rows());
  const Eigen::MatrixXd r = correlation(X_, Xs, hyper_.length);  // n x m
  mean = (r.transpose() * alpha_).array() * y_scale_ + y_mean_;
  if (var == nullptr) return;
  const Eigen::MatrixXd v = llt_.matrixL().solve(r);
  *var =
      ((1.0 - v.colwise().squaredNorm().array()).max(0.0) * hyper_.signal_var * y_scale_ * y_scale_)
          .matrix();
}

}  // namespace mtf::agents
