// BCQ / BatchRL-MTF: Algorithm 1 of the BatchRL-MTF paper with the Section 4.2 settings:
// gamma 0.95; learning rates 1e-3 (G), 1e-4 (P), 2e-4 (Q); eta_t 0.05 every
// L = 10 steps; rho 0.15; batch 256. Update order as in Algorithm 1: G, P, Q.
#include "agents/bcq.h"

namespace mtf::agents {

nlohmann::json Bcq::defaults() {
  nlohmann::json d = common_defaults();
  d.update({{"gamma", 0.95},
            {"vae_lr", 1e-3},
            {"perturbation_lr", 1e-4},
            {"critic_lr", 2e-4},
            {"soft_update", 0.05},       // eta_t
            {"target_update_every", 10}, // L
            {"rho", 0.15},
            // Eq. 7 takes the plain minimum of the two target critics (lambda = 1);
            // Fujimoto et al.'s BCQ mixes lambda * min + (1 - lambda) * max with 0.75.
            {"lambda", 1.0},
            {"sampled_actions", 10},     // n
            {"latent_dim", 0},           // 0: twice the action dimension (as BCQ)
            {"kl_weight", 1.0}});        // Eq. 3: reconstruction + KL with unit weight
  return d;
}

Bcq::Bcq(const nlohmann::json& hp, int S, int A, std::uint64_t seed)
    : AgentBase(kName, Hyperparameters(kName, defaults(), hp), S, A, seed) {
  gamma_ = hp_.number("gamma", 0.0, 1.0);
  eta_t_ = hp_.number("soft_update", 0.0, 1.0, true);
  lambda_ = hp_.number("lambda", 0.0, 1.0);
  kl_weight_ = hp_.number("kl_weight", 0.0, 1e6);
  L_ = hp_.integer("target_update_every", 1, 1 << 30);
  n_ = hp_.integer("sampled_actions", 1, 4096);
  const float rho = hp_.number("rho", 0.0, 2.0);
  int latent = hp_.integer("latent_dim", 0, 1 << 16);
  if (latent == 0) latent = 2 * A;
  const nn::MlpSpec base = spec(S + A, A);
  // The VAE's encoder and decoder have the widths of `base` around the latent:
  // checked against the size bound as the other networks are.
  (void)spec(S + A, 2 * latent);
  (void)spec(S + latent, A);
  vae_ = nn::ConditionalVae(S, A, latent, base.hidden, base.activation, init_rng_);
  pert_ = nn::Perturbation(spec(S + A, A), rho, init_rng_);
  target_pert_ = pert_;
  critics_ = nn::Mlp(spec(S + A, 1, 2), init_rng_);
  target_critics_ = critics_;
  vae_opt_ = nn::Adam(vae_.params(), {hp_.number("vae_lr", 0.0, 1.0, true)});
  pert_opt_ = nn::Adam(pert_.net.params(), {hp_.number("perturbation_lr", 0.0, 1.0, true)});
  critic_opt_ = nn::Adam(critics_.params(), {hp_.number("critic_lr", 0.0, 1.0, true)});
}

Losses Bcq::update(const Batch& b) {
  const Eigen::Index B = b.size();
  const float inv_b = 1.0f / static_cast<float>(B);

  // ---- Eq. 3: G = {E, D} by reconstruction + KL.
  const double vae_loss = vae_.loss_and_grad(b.state, b.action, kl_weight_, noise_rng_);
  vae_opt_.step();

  // ---- Eq. 5: P maximises Q_1(s, a_hat + P(s, a_hat, rho)), a_hat ~ G(s).
  vae_.sample(b.state, noise_rng_, ws_vae_, a_hat_);
  const Matrix& pa = pert_.forward(b.state, a_hat_, ws_pert_);
  critic_input(b.state, pa, in_);
  const Matrix& qp = critics_.forward(in_, ws_critic_);
  const double pert_loss = -qp.row(0).mean();
  dq_ = Matrix::Zero(2, B);
  dq_.row(0).setConstant(-inv_b);
  critics_.input_backward(in_, dq_, ws_critic_, da_, S_, A_);
  pert_.backward(da_, ws_pert_);
  pert_opt_.step();

  // ---- Eqs. 6, 7: y = r + gamma max_{a'} [lambda min_j Q'_j + (1 - lambda) max_j Q'_j](s', a'),
  // a' in {a_hat'_i + P'(s', a_hat'_i)}, a_hat'_i ~ G(s'), i = 1..n.
  s_rep_.resize(S_, B * n_);
  for (Eigen::Index j = 0; j < B; ++j)
    for (int k = 0; k < n_; ++k) s_rep_.col(j * n_ + k) = b.next_state.col(j);
  vae_.sample(s_rep_, noise_rng_, ws_vae_, a_hat_);
  const Matrix& next_a = target_pert_.forward(s_rep_, a_hat_, ws_target_pert_);
  critic_input(s_rep_, next_a, in_target_);
  const Matrix& qt = target_critics_.forward(in_target_, ws_target_);
  const RowVector mixed = lambda_ * qt.colwise().minCoeff().array() + (1.0f - lambda_) * qt.colwise().maxCoeff().array();
  const RowVector discount = continuation(gamma_, b);
  RowVector y(B);
  for (Eigen::Index j = 0; j < B; ++j) y(j) = b.reward(0, j) + discount(j) * mixed.segment(j * n_, n_).maxCoeff();
  critic_input(b.state, b.action, in_);
  dq_ = critics_.forward(in_, ws_critic_).rowwise() - y;
  const double critic_loss = dq_.squaredNorm() * inv_b;
  dq_ *= 2.0f * inv_b;
  critics_.backward(in_, dq_, ws_critic_, nn::BackwardOptions{});
  critic_opt_.step();

  // ---- Algorithm 1, lines 12 to 15: soft updates every L steps.
  ++updates_;
  if (updates_ % L_ == 0) {
    target_pert_.net.soft_update_from(pert_.net, eta_t_);
    target_critics_.soft_update_from(critics_, eta_t_);
  }
  return {{"vae", vae_loss}, {"perturbation", pert_loss}, {"critic", critic_loss}};
}

// Eq. 4: pi(s) = argmax over n perturbed generated actions of Q_1.
void Bcq::act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const {
  const Eigen::Index B = s.cols();
  Matrix rep(S_, B * n_);
  for (Eigen::Index j = 0; j < B; ++j)
    for (int k = 0; k < n_; ++k) rep.col(j * n_ + k) = s.col(j);
  Matrix cand, pert, in, q;
  vae_.sample(rep, rng, cand);
  pert_.infer(rep, cand, pert);
  critic_input(rep, pert, in);
  critics_.infer_columns(in, q);  // per column, as the decoder and perturbation: independent of the batch
  a.resize(A_, B);
  for (Eigen::Index j = 0; j < B; ++j) {
    Eigen::Index best;
    q.row(0).segment(j * n_, n_).maxCoeff(&best);
    a.col(j) = pert.col(j * n_ + best);
  }
}

Matrix Bcq::q_normalised(const ConstRef& s, const ConstRef& a) const {
  Matrix in, q;
  critic_input(s, a, in);
  critics_.infer(in, q);
  return q;
}

std::vector<std::pair<std::string, nn::Mlp*>> Bcq::networks() {
  return {{"vae_encoder", &vae_.encoder}, {"vae_decoder", &vae_.decoder}, {"perturbation", &pert_.net},
          {"critics", &critics_}};
}

TrainingState Bcq::training_state() {
  return {{{"target_perturbation", &target_pert_.net, &pert_.net}, {"target_critics", &target_critics_, &critics_}},
          {{"vae_opt", &vae_opt_}, {"perturbation_opt", &pert_opt_}, {"critic_opt", &critic_opt_}},
          {{"updates", &updates_}},
          {}};
}

}  // namespace mtf::agents
