// DDPG (Lillicrap et al. 2016, Algorithm 1) with the settings of the TD3
// paper's re-implementation ("OurDDPG": learning rates 3e-4, tau 0.005).
#include "agents/ddpg.h"

namespace mtf::agents {

nlohmann::json Ddpg::defaults() {
  nlohmann::json d = common_defaults();
  d.update({{"gamma", 0.99}, {"tau", 0.005}, {"actor_lr", 3e-4}, {"critic_lr", 3e-4}});
  return d;
}

Ddpg::Ddpg(const nlohmann::json& hp, int S, int A, std::uint64_t seed)
    : AgentBase(kName, Hyperparameters(kName, defaults(), hp), S, A, seed) {
  gamma_ = hp_.number("gamma", 0.0, 1.0);
  tau_ = hp_.number("tau", 0.0, 1.0, true);
  actor_ = nn::TanhActor(spec(S, A), init_rng_);
  target_actor_ = actor_;
  critic_ = nn::Mlp(spec(S + A, 1, 1), init_rng_);
  target_critic_ = critic_;
  actor_opt_ = nn::Adam(actor_.net.params(), {hp_.number("actor_lr", 0.0, 1.0, true)});
  critic_opt_ = nn::Adam(critic_.params(), {hp_.number("critic_lr", 0.0, 1.0, true)});
}

Losses Ddpg::update(const Batch& b) {
  const Eigen::Index B = b.size();
  const float inv_b = 1.0f / static_cast<float>(B);
  // y = r + gamma (1 - done) Q'(s', mu'(s')).
  const Matrix& next_a = target_actor_.forward(b.next_state, ws_target_actor_);
  critic_input(b.next_state, next_a, in_target_);
  const Matrix& qt = target_critic_.forward(in_target_, ws_target_);
  const RowVector y = b.reward.row(0).array() + continuation(gamma_, b).array() * qt.row(0).array();
  critic_input(b.state, b.action, in_);
  dq_ = critic_.forward(in_, ws_critic_).rowwise() - y;
  const double critic_loss = dq_.squaredNorm() * inv_b;
  dq_ *= 2.0f * inv_b;
  critic_.backward(in_, dq_, ws_critic_, nn::BackwardOptions{});
  critic_opt_.step();
  // Deterministic policy gradient: maximise Q(s, mu(s)).
  const Matrix& a = actor_.forward(b.state, ws_actor_);
  critic_input(b.state, a, in_);
  const double actor_loss = -critic_.forward(in_, ws_critic_).mean();
  dq_ = Matrix::Constant(1, B, -inv_b);
  critic_.input_backward(in_, dq_, ws_critic_, da_, S_, A_);
  actor_.backward(b.state, da_, ws_actor_);
  actor_opt_.step();
  target_actor_.net.soft_update_from(actor_.net, tau_);
  target_critic_.soft_update_from(critic_, tau_);
  return {{"critic", critic_loss}, {"actor", actor_loss}};
}

void Ddpg::act_normalised(const ConstRef& s, Matrix& a, Rng&) const { actor_.infer(s, a); }

Matrix Ddpg::q_normalised(const ConstRef& s, const ConstRef& a) const {
  Matrix in, q;
  critic_input(s, a, in);
  critic_.infer(in, q);
  return q;
}

std::vector<std::pair<std::string, nn::Mlp*>> Ddpg::networks() {
  return {{"actor", &actor_.net}, {"critic", &critic_}};
}

TrainingState Ddpg::training_state() {
  return {{{"target_actor", &target_actor_.net, &actor_.net}, {"target_critic", &target_critic_, &critic_}},
          {{"actor_opt", &actor_opt_}, {"critic_opt", &critic_opt_}},
          {},
          {}};
}

}  // namespace mtf::agents
