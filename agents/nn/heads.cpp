// Output heads: tanh actor, tanh-Gaussian (SAC), Gaussian (IQL), conditional VAE
// and perturbation network (BCQ), MC dropout moments (UWAC). The functions of
// acting (infer, infer_mean, the const sample, Perturbation::infer) use
// Mlp::infer_columns and tanh_exact_order: a column's action does not depend on
// the batch it is computed in. Training keeps forward()/infer().
#include "agents/nn/heads.h"

#include <algorithm>
#include <boost/random/normal_distribution.hpp>
#include <cassert>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace mtf::nn {
namespace {
constexpr float kHalfLog2Pi = 0.91893853320467274178f;  // 0.5 * log(2 pi)

// log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|.
inline float log1m_tanh2(float u) {
  const float x = -2.0f * u;
  const float softplus = x > 20.0f ? x : std::log1p(std::exp(x));
  return 2.0f * (std::numbers::ln2_v<float> - u - softplus);
}
}  // namespace

void vstack(const ConstRef& top, const ConstRef& bottom, Matrix& out) {
  assert(top.cols() == bottom.cols());
  out.resize(top.rows() + bottom.rows(), top.cols());
  out.topRows(top.rows()) = top;
  out.bottomRows(bottom.rows()) = bottom;
}

void fill_normal(Matrix& m, Eigen::Index rows, Eigen::Index cols, Rng& rng) {
  m.resize(rows, cols);
  boost::random::normal_distribution<float> normal(0.0f, 1.0f);
  for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = normal(rng);
}

void fill_uniform(Matrix& m, Eigen::Index rows, Eigen::Index cols, float lo, float hi, Rng& rng) {
  m.resize(rows, cols);
  for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = lo + (hi - lo) * rng.uniform01();
}

// ---------------------------------------------------------------- TanhActor
const Matrix& TanhActor::forward(const ConstRef& s, MlpWorkspace& ws) {
  action = net.forward(s, ws).array().tanh();
  return action;
}

void TanhActor::backward(const ConstRef& s, const ConstRef& da, MlpWorkspace& ws, bool accumulate) {
  dout = da.array() * (1.0f - action.array().square());
  BackwardOptions opt;
  opt.accumulate = accumulate;
  net.backward(s, dout, ws, opt);
}

void TanhActor::infer(const ConstRef& s, Matrix& a) const {
  net.infer_columns(s, a);
  tanh_in_place(a);
}

// ---------------------------------------------------------------- TanhGaussianActor
TanhGaussianActor::TanhGaussianActor(const MlpSpec& spec, Rng& rng) : net(spec, rng) {
  if (spec.output % 2 != 0) throw std::invalid_argument("TanhGaussianActor: output must be 2 * action_dim");
}

void TanhGaussianActor::sample(const ConstRef& s, Rng& rng, MlpWorkspace& ws) {
  const Matrix& out = net.forward(s, ws);
  const int A = action_dim();
  const Eigen::Index B = s.cols();
  fill_normal(eps, A, B, rng);
  stddev = out.bottomRows(A).cwiseMax(kLogStdMin).cwiseMin(kLogStdMax).array().exp();
  pre_tanh = out.topRows(A).array() + stddev.array() * eps.array();
  action = pre_tanh.array().tanh();
  log_prob.resize(1, B);
  for (Eigen::Index j = 0; j < B; ++j) {
    float lp = 0.0f;
    for (int i = 0; i < A; ++i) {
      const float log_std = std::log(stddev(i, j));
      lp += -0.5f * eps(i, j) * eps(i, j) - log_std - kHalfLog2Pi - log1m_tanh2(pre_tanh(i, j));
    }
    log_prob(0, j) = lp;
  }
}

void TanhGaussianActor::backward(const ConstRef& s, const ConstRef& da, const ConstRef& dlogp, MlpWorkspace& ws,
                                 bool accumulate) {
  const int A = action_dim();
  const Eigen::Index B = s.cols();
  const Matrix& out = ws.out;
  dout.resize(2 * A, B);
  for (Eigen::Index j = 0; j < B; ++j) {
    for (int i = 0; i < A; ++i) {
      const float a = action(i, j);
      // u = mu + sigma * eps; d log(1 - tanh(u)^2) / du = -2 tanh(u).
      const float du = da(i, j) * (1.0f - a * a) + dlogp(0, j) * 2.0f * a;
      dout(i, j) = du;
      const float ls = out(A + i, j);
      const bool free = ls > kLogStdMin && ls < kLogStdMax;
      // d/dlog sigma: through u (sigma * eps) and the -log sigma of the Gaussian density.
      dout(A + i, j) = free ? du * stddev(i, j) * eps(i, j) - dlogp(0, j) : 0.0f;
    }
  }
  BackwardOptions opt;
  opt.accumulate = accumulate;
  net.backward(s, dout, ws, opt);
}

void TanhGaussianActor::infer_mean(const ConstRef& s, Matrix& a) const {
  Matrix out;
  net.infer_columns(s, out);
  a = out.topRows(action_dim());
  tanh_in_place(a);
}

// ---------------------------------------------------------------- GaussianActor
GaussianActor::GaussianActor(const MlpSpec& spec, Rng& rng) : net(spec, rng) {
  log_std = {"log_std", Matrix::Zero(spec.output, 1), Matrix::Zero(spec.output, 1)};
}

const Matrix& GaussianActor::log_prob(const ConstRef& s, const ConstRef& a, MlpWorkspace& ws) {
  mean = net.forward(s, ws).array().tanh();
  const Vector ls = log_std.value.col(0).cwiseMax(-5.0f).cwiseMin(2.0f);
  const Vector inv_std = (-ls).array().exp();
  logp.resize(1, a.cols());
  const float log_norm = -ls.sum() - kHalfLog2Pi * static_cast<float>(a.rows());
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    logp(0, j) = -0.5f * ((a.col(j) - mean.col(j)).cwiseProduct(inv_std)).squaredNorm() + log_norm;
  return logp;
}

void GaussianActor::backward(const ConstRef& s, const ConstRef& a, const ConstRef& dlogp, MlpWorkspace& ws) {
  const Vector ls = log_std.value.col(0).cwiseMax(-5.0f).cwiseMin(2.0f);
  const Vector inv_var = (-2.0f * ls).array().exp();
  const Eigen::Index B = a.cols();
  dout.resize(a.rows(), B);
  Vector dls = Vector::Zero(a.rows());
  for (Eigen::Index j = 0; j < B; ++j) {
    const Vector diff = a.col(j) - mean.col(j);
    // d log N / d mean = (a - mean) / sigma^2; d / d log sigma = (a - mean)^2 / sigma^2 - 1.
    dout.col(j) = dlogp(0, j) * diff.cwiseProduct(inv_var).cwiseProduct((1.0f - mean.col(j).array().square()).matrix());
    dls += dlogp(0, j) * (diff.array().square() * inv_var.array() - 1.0f).matrix();
  }
  for (Eigen::Index i = 0; i < dls.size(); ++i) {
    const float v = log_std.value(i, 0);
    log_std.grad(i, 0) = (v > -5.0f && v < 2.0f) ? dls(i) : 0.0f;
  }
  net.backward(s, dout, ws, BackwardOptions{});
}

void GaussianActor::infer_mean(const ConstRef& s, Matrix& a) const {
  net.infer_columns(s, a);
  tanh_in_place(a);
}

std::vector<Param*> GaussianActor::params() {
  auto p = net.params();
  p.push_back(&log_std);
  return p;
}

// ---------------------------------------------------------------- ConditionalVae
ConditionalVae::ConditionalVae(int state_dim, int action_dim, int latent_dim, const std::vector<int>& hidden,
                               Activation act, Rng& rng)
    : state_(state_dim), action_(action_dim), latent_(latent_dim) {
  MlpSpec e;
  e.input = state_dim + action_dim;
  e.hidden = hidden;
  e.output = 2 * latent_dim;
  e.activation = act;
  encoder = Mlp(e, rng);
  MlpSpec d;
  d.input = state_dim + latent_dim;
  d.hidden = hidden;
  d.output = action_dim;
  d.activation = act;
  decoder = Mlp(d, rng);
}

double ConditionalVae::loss_and_grad(const ConstRef& s, const ConstRef& a, float kl_weight, Rng& rng) {
  const Eigen::Index B = s.cols();
  const int Z = latent_;
  vstack(s, a, enc_in_);
  const Matrix& eo = encoder.forward(enc_in_, enc_ws_);
  const Matrix log_std = eo.bottomRows(Z).cwiseMax(-4.0f).cwiseMin(15.0f);
  std_ = log_std.array().exp();
  fill_normal(eps_, Z, B, rng);
  z_ = eo.topRows(Z).array() + std_.array() * eps_.array();
  vstack(s, z_, dec_in_);
  const Matrix recon = decoder.forward(dec_in_, dec_ws_).array().tanh();

  const float inv_b = 1.0f / static_cast<float>(B);
  const Matrix diff = recon - a;
  const Matrix mu = eo.topRows(Z);
  // KL(N(mu, sigma^2) || N(0, 1)) = -0.5 * sum(1 + 2 log sigma - mu^2 - sigma^2).
  const double kl = -0.5 * (1.0f + 2.0f * log_std.array() - mu.array().square() - std_.array().square()).sum();
  const double loss = (diff.squaredNorm() + kl_weight * kl) * inv_b;

  // Decoder: dL/drecon = 2 (recon - a) / B, through tanh.
  d_dec_ = (2.0f * inv_b) * diff.array() * (1.0f - recon.array().square());
  BackwardOptions dopt;
  dopt.input_grad = &d_z_;
  dopt.input_begin = state_;
  dopt.input_count = Z;
  decoder.backward(dec_in_, d_dec_, dec_ws_, dopt);
  // Encoder: z = mu + sigma * eps, plus the KL terms.
  d_enc_.resize(2 * Z, B);
  d_enc_.topRows(Z) = d_z_ + (kl_weight * inv_b) * mu;
  for (Eigen::Index j = 0; j < B; ++j)
    for (int i = 0; i < Z; ++i) {
      const float ls = eo(Z + i, j);
      const bool free = ls > -4.0f && ls < 15.0f;
      const float sd = std_(i, j);
      d_enc_(Z + i, j) = free ? d_z_(i, j) * sd * eps_(i, j) + kl_weight * inv_b * (sd * sd - 1.0f) : 0.0f;
    }
  encoder.backward(enc_in_, d_enc_, enc_ws_, BackwardOptions{});
  return loss;
}

void ConditionalVae::sample(const ConstRef& s, Rng& rng, Matrix& a, float clip) const {
  Matrix z;
  fill_normal(z, latent_, s.cols(), rng);
  z = z.cwiseMax(-clip).cwiseMin(clip);
  Matrix in;
  vstack(s, z, in);
  decoder.infer_columns(in, a);
  tanh_in_place(a);
}

void ConditionalVae::sample(const ConstRef& s, Rng& rng, MlpWorkspace& ws, Matrix& a, float clip) const {
  Matrix z;
  fill_normal(z, latent_, s.cols(), rng);
  z = z.cwiseMax(-clip).cwiseMin(clip);
  Matrix in;
  vstack(s, z, in);
  a = decoder.forward(in, ws).array().tanh();
}

std::vector<Param*> ConditionalVae::params() {
  auto p = encoder.params();
  for (Param* q : decoder.params()) p.push_back(q);
  return p;
}

// ---------------------------------------------------------------- Perturbation
Perturbation::Perturbation(const MlpSpec& spec, float rho, Rng& rng) : net(spec, rng), rho_(rho) {}

const Matrix& Perturbation::forward(const ConstRef& s, const ConstRef& a, MlpWorkspace& ws) {
  vstack(s, a, input);
  xi_ = rho_ * net.forward(input, ws).array().tanh();
  base_ = a;
  perturbed = (a + xi_).cwiseMax(-1.0f).cwiseMin(1.0f);
  return perturbed;
}

void Perturbation::backward(const ConstRef& da, MlpWorkspace& ws) {
  // Zero gradient where the clip is active; xi = rho * tanh(y): dxi/dy = rho - xi^2 / rho.
  const Matrix raw = base_ + xi_;
  dout = (raw.array().abs() < 1.0f).select(da.array(), 0.0f) * (rho_ - xi_.array().square() / rho_);
  net.backward(input, dout, ws, BackwardOptions{});
}

void Perturbation::infer(const ConstRef& s, const ConstRef& a, Matrix& out) const {
  Matrix in;
  vstack(s, a, in);
  net.infer_columns(in, out);
  for (Eigen::Index j = 0; j < out.cols(); ++j)
    for (Eigen::Index i = 0; i < out.rows(); ++i)
      out(i, j) = std::clamp(std::fma(rho_, tanh_exact_order(out(i, j)), a(i, j)), -1.0f, 1.0f);
}

// ---------------------------------------------------------------- MC dropout
void mc_dropout_moments(const Mlp& net, const ConstRef& x, int samples, Rng& rng, MlpWorkspace& ws, Matrix& mean,
                        Matrix& variance) {
  assert(samples >= 2);
  const Eigen::Index R = net.members() * net.output_dim(), B = x.cols();
  mean = Matrix::Zero(R, B);
  Matrix sq = Matrix::Zero(R, B);
  for (int k = 0; k < samples; ++k) {
    const Matrix& out = net.forward(x, ws, &rng);
    mean += out;
    sq += out.cwiseProduct(out);
  }
  mean /= static_cast<float>(samples);
  // Unbiased sample variance, floored at 0 against rounding.
  variance = ((sq - static_cast<float>(samples) * mean.cwiseProduct(mean)) / static_cast<float>(samples - 1))
                 .cwiseMax(0.0f);
}

}  // namespace mtf::nn
