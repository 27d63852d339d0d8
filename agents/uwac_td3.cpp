// UWAC+TD3 (Wu et al. 2021, Eqs. 8 and 9 with TD3 as the base learner): the
// critics carry dropout 0.1; the variance of MC-dropout samples of Q down-weights
// uncertain (out-of-distribution) targets and actions.
#include "agents/uwac_td3.h"

#include <algorithm>
#include <cmath>

namespace mtf::agents {

nlohmann::json UwacTd3::defaults() {
  nlohmann::json d = common_defaults();
  d.update({{"gamma", 0.99},
            {"tau", 0.005},
            {"policy_noise", 0.2},
            {"noise_clip", 0.5},
            {"policy_delay", 2},
            {"actor_lr", 3e-4},
            {"critic_lr", 3e-4},
            {"dropout", 0.1},
            {"mc_samples", 10},
            {"beta", 1.0},
            {"weight_min", 0.0},
            {"weight_max", 1.5}});
  return d;
}

UwacTd3::UwacTd3(const nlohmann::json& hp, int S, int A, std::uint64_t seed)
    : AgentBase(kName, Hyperparameters(kName, defaults(), hp), S, A, seed) {
  gamma_ = hp_.number("gamma", 0.0, 1.0);
  tau_ = hp_.number("tau", 0.0, 1.0, true);
  noise_ = hp_.number("policy_noise", 0.0, 10.0);
  noise_clip_ = hp_.number("noise_clip", 0.0, 10.0);
  delay_ = hp_.integer("policy_delay", 1, 1 << 20);
  samples_ = hp_.integer("mc_samples", 2, 1024);
  beta_ = hp_.number("beta", 0.0, 1e6);
  wmin_ = hp_.number("weight_min", 0.0, 1e6);
  wmax_ = hp_.number("weight_max", 0.0, 1e6);
  if (wmax_ < wmin_) throw std::invalid_argument("uwac_td3.weight_max: expected a number >= weight_min");
  actor_ = nn::TanhActor(spec(S, A), init_rng_);
  target_actor_ = actor_;
  nn::MlpSpec cs = spec(S + A, 1, 2);
  cs.dropout = hp_.number("dropout", 0.0, 0.99);
  critics_ = nn::Mlp(cs, init_rng_);
  target_critics_ = critics_;
  actor_opt_ = nn::Adam(actor_.net.params(), {hp_.number("actor_lr", 0.0, 1.0, true)});
  critic_opt_ = nn::Adam(critics_.params(), {hp_.number("critic_lr", 0.0, 1.0, true)});
}

RowVector UwacTd3::weights(const Matrix& variance) const {
  // Per sample: clamp(exp(-beta * Var), weight_min, weight_max), Var averaged over the critics.
  return (-beta_ * variance.colwise().mean().array()).exp().cwiseMax(wmin_).cwiseMin(wmax_);
}

Losses UwacTd3::update(const Batch& b) {
  const Eigen::Index B = b.size();
  const float inv_b = 1.0f / static_cast<float>(B);
  next_a_ = target_actor_.forward(b.next_state, ws_target_actor_);
  nn::fill_normal(eps_, A_, B, noise_rng_);
  next_a_ = (next_a_ + (noise_ * eps_).cwiseMax(-noise_clip_).cwiseMin(noise_clip_)).cwiseMax(-1.0f).cwiseMin(1.0f);
  critic_input(b.next_state, next_a_, in_target_);
  // MC dropout over the target critics at (s', a'): mean for the target, variance for the weight.
  nn::mc_dropout_moments(target_critics_, in_target_, samples_, noise_rng_, ws_mc_, mean_, var_);
  const RowVector w_critic = weights(var_);
  const RowVector y = b.reward.row(0).array() +
                      gamma_ * (1.0f - b.done.row(0).array()) * mean_.colwise().minCoeff().array();
  critic_input(b.state, b.action, in_);
  dq_ = critics_.forward(in_, ws_critic_, &noise_rng_).rowwise() - y;  // dropout on while training
  const double critic_loss = (dq_.array().square().rowwise() * w_critic.array()).sum() * inv_b;
  dq_ = (dq_.array().rowwise() * w_critic.array()) * (2.0f * inv_b);
  critics_.backward(in_, dq_, ws_critic_, nn::BackwardOptions{});
  critic_opt_.step();

  ++updates_;
  if (updates_ % delay_ == 0) {
    const Matrix& a = actor_.forward(b.state, ws_actor_);
    critic_input(b.state, a, in_);
    nn::mc_dropout_moments(critics_, in_, samples_, noise_rng_, ws_mc_, mean_, var_);
    const RowVector w_actor = weights(var_);
    const Matrix& qa = critics_.forward(in_, ws_critic_, &noise_rng_);
    last_actor_loss_ = -(qa.row(0).array() * w_actor.array()).mean();
    dq_ = Matrix::Zero(2, B);
    dq_.row(0) = -w_actor * inv_b;
    critics_.input_backward(in_, dq_, ws_critic_, da_, S_, A_);
    actor_.backward(b.state, da_, ws_actor_);
    actor_opt_.step();
    target_actor_.net.soft_update_from(actor_.net, tau_);
    target_critics_.soft_update_from(critics_, tau_);
  }
  return {{"critic", critic_loss}, {"actor", last_actor_loss_}};
}

void UwacTd3::act_normalised(const ConstRef& s, Matrix& a, Rng&) const { actor_.infer(s, a); }

Matrix UwacTd3::q_normalised(const ConstRef& s, const ConstRef& a) const {
  Matrix in, q;
  critic_input(s, a, in);
  critics_.infer(in, q);
  return q;
}

std::vector<std::pair<std::string, nn::Mlp*>> UwacTd3::networks() {
  return {{"actor", &actor_.net}, {"critics", &critics_}};
}

void UwacTd3::after_load() {
  target_actor_.net.copy_from(actor_.net);
  target_critics_.copy_from(critics_);
}

}  // namespace mtf::agents
