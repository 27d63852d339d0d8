// Output heads built on Mlp: what the agents' actors, generative models and
// uncertainty estimates need. Each head has a forward pass that keeps what its
// backward pass needs, and a backward pass that computes only parameter
// gradients (actors are never differentiated w.r.t. their input).
#pragma once

#include "agents/nn/mlp.h"

namespace mtf::nn {

/// Stacks [top; bottom] (rows) into out, reusing out's storage.
void vstack(const ConstRef& top, const ConstRef& bottom, Matrix& out);

/// Fills m with independent standard normal draws (Boost.Random), column by column.
void fill_normal(Matrix& m, Eigen::Index rows, Eigen::Index cols, Rng& rng);
/// Fills m with independent U(lo, hi) draws, column by column.
void fill_uniform(Matrix& m, Eigen::Index rows, Eigen::Index cols, float lo, float hi, Rng& rng);

/// Deterministic actor a = tanh(f(s)) in [-1, 1]^A (DDPG, TD3, IntegratedRL-MTF, BC).
class TanhActor {
 public:
  TanhActor() = default;
  TanhActor(const MlpSpec& spec, Rng& rng) : net(spec, rng) {}
  /// a = tanh(f(s)) (A x B), kept in ws for backward.
  const Matrix& forward(const ConstRef& s, MlpWorkspace& ws);
  /// Parameter gradients from dL/da (A x B).
  void backward(const ConstRef& s, const ConstRef& da, MlpWorkspace& ws, bool accumulate = false);
  /// Acting: a = tanh(f(s)) column by column (Mlp::infer_columns,
  /// tanh_exact_order), so each column is independent of the batch.
  void infer(const ConstRef& s, Matrix& a) const;

  Mlp net;
  Matrix action;  ///< last forward's output
  Matrix dout;
};

/// Tanh-squashed Gaussian policy of SAC: u = mu(s) + sigma(s) * eps, a = tanh(u),
/// with log pi(a|s) including the tanh change of variables (Haarnoja et al. 2018, App. C).
/// The network outputs [mu; log sigma] (2A rows); log sigma is clamped to
/// [kLogStdMin, kLogStdMax] (no gradient beyond the clamp).
class TanhGaussianActor {
 public:
  static constexpr float kLogStdMin = -5.0f;
  static constexpr float kLogStdMax = 2.0f;
  TanhGaussianActor() = default;
  TanhGaussianActor(const MlpSpec& spec, Rng& rng);  ///< spec.output must be 2A
  int action_dim() const { return net.output_dim() / 2; }

  /// Samples a (A x B) with eps drawn from rng; log_prob (1 x B). Kept for backward.
  void sample(const ConstRef& s, Rng& rng, MlpWorkspace& ws);
  /// Parameter gradients from dL/da (A x B) and dL/dlog_prob (1 x B), through the reparameterisation.
  void backward(const ConstRef& s, const ConstRef& da, const ConstRef& dlogp, MlpWorkspace& ws,
                bool accumulate = false);
  /// Deterministic action tanh(mu(s)); acting, per column (Mlp::infer_columns).
  void infer_mean(const ConstRef& s, Matrix& a) const;

  Mlp net;
  Matrix action, log_prob;
  Matrix eps, stddev, pre_tanh;
  Matrix dout;
};

/// Gaussian policy of IQL: a ~ N(tanh(f(s)), diag(exp(log_std))^2), with a
/// state-independent learned log_std (A x 1) clamped to [-5, 2].
class GaussianActor {
 public:
  GaussianActor() = default;
  GaussianActor(const MlpSpec& spec, Rng& rng);
  /// log pi(a|s) for given actions (A x B) -> (1 x B); kept for backward.
  const Matrix& log_prob(const ConstRef& s, const ConstRef& a, MlpWorkspace& ws);
  /// Parameter gradients from dL/dlog_prob (1 x B).
  void backward(const ConstRef& s, const ConstRef& a, const ConstRef& dlogp, MlpWorkspace& ws);
  /// Acting: the mean tanh(f(s)), per column (Mlp::infer_columns).
  void infer_mean(const ConstRef& s, Matrix& a) const;
  std::vector<Param*> params();

  Mlp net;
  Param log_std;
  Matrix mean, logp, dout;
};

/// Conditional VAE of BCQ (BatchRL-MTF, Eq. 3): encoder E(z|s,a) -> (mu, log sigma),
/// decoder D(a|s,z) = tanh(g(s, z)). Latent log sigma clamped to [-4, 15].
class ConditionalVae {
 public:
  ConditionalVae() = default;
  ConditionalVae(int state_dim, int action_dim, int latent_dim, const std::vector<int>& hidden,
                 Activation act, Rng& rng);
  int latent_dim() const { return latent_; }

  /// Loss of BatchRL-MTF Eq. 3 on a batch: mean over the batch of
  /// ||a - D(s, z)||^2 + kl_weight * KL(E(z|s,a) || N(0, I)), z = mu + sigma * eps
  /// with eps drawn from rng. Writes the parameter gradients; returns the loss.
  double loss_and_grad(const ConstRef& s, const ConstRef& a, float kl_weight, Rng& rng);
  /// Decodes actions for states s with latents drawn from N(0, I) clipped to
  /// [-clip, clip] (BCQ's sampling rule). Thread-safe (local buffers). Acting:
  /// the decoder runs per column (Mlp::infer_columns).
  void sample(const ConstRef& s, Rng& rng, Matrix& a, float clip = 0.5f) const;
  /// As sample(), with the batch split across threads (ws holds the activations).
  void sample(const ConstRef& s, Rng& rng, MlpWorkspace& ws, Matrix& a, float clip = 0.5f) const;
  std::vector<Param*> params();

  Mlp encoder, decoder;

 private:
  int state_ = 0, action_ = 0, latent_ = 0;
  MlpWorkspace enc_ws_, dec_ws_;
  Matrix enc_in_, dec_in_, eps_, z_, std_, d_dec_, d_z_, d_enc_;
};

/// Perturbation network of BCQ (BatchRL-MTF, Sec. 3.2.1): xi = rho * tanh(f(s, a)) in
/// [-rho, rho]^A; the perturbed action is clip(a + xi, -1, 1).
class Perturbation {
 public:
  Perturbation() = default;
  Perturbation(const MlpSpec& spec, float rho, Rng& rng);  ///< spec.input = S + A, output = A
  float rho() const { return rho_; }
  /// Perturbed actions for (s, a) (A x B), kept for backward.
  const Matrix& forward(const ConstRef& s, const ConstRef& a, MlpWorkspace& ws);
  /// Parameter gradients from dL/d(perturbed action).
  void backward(const ConstRef& da, MlpWorkspace& ws);
  /// Acting: perturbed actions per column (Mlp::infer_columns, tanh_exact_order).
  void infer(const ConstRef& s, const ConstRef& a, Matrix& out) const;

  Mlp net;
  Matrix input, perturbed, dout;

 private:
  float rho_ = 0.15f;
  Matrix xi_, base_;
};

/// MC dropout (Gal & Ghahramani 2016; UWAC): mean and variance over `samples`
/// stochastic forward passes of a dropout network, per output and column.
void mc_dropout_moments(const Mlp& net, const ConstRef& x, int samples, Rng& rng, MlpWorkspace& ws,
                        Matrix& mean, Matrix& variance);

}  // namespace mtf::nn
