// TD3 (Fujimoto, van Hoof & Meger 2018, Algorithm 1): policy noise 0.2, noise
// clip 0.5, policy delay 2, tau 0.005, learning rates 3e-4.
#include "agents/td3.h"

namespace mtf::agents {

double td_loss(const ConstRef& q, const ConstRef& y, const RowVector* weight, Matrix& grad) {
  const float inv_b = 1.0f / static_cast<float>(q.cols());
  grad = q.rowwise() - y.row(0);
  if (weight == nullptr) {
    const double loss = grad.squaredNorm() * inv_b;
    grad *= 2.0f * inv_b;
    return loss;
  }
  const double loss = (grad.array().square().rowwise() * weight->array()).sum() * inv_b;
  grad = (grad.array().rowwise() * weight->array()) * (2.0f * inv_b);
  return loss;
}

nlohmann::json Td3::defaults() {
  nlohmann::json d = common_defaults();
  d.update({{"gamma", 0.99},
            {"tau", 0.005},
            {"policy_noise", 0.2},
            {"noise_clip", 0.5},
            {"policy_delay", 2},
            {"actor_lr", 3e-4},
            {"critic_lr", 3e-4}});
  return d;
}

Td3::Td3(const nlohmann::json& hp, int S, int A, std::uint64_t seed)
    : Td3(kName, Hyperparameters(kName, defaults(), hp), S, A, seed, nullptr) {}

Td3::Td3(std::string name, Hyperparameters hp, int S, int A, std::uint64_t seed,
         const char* dropout_key)
    : AgentBase(std::move(name), std::move(hp), S, A, seed) {
  gamma_ = hp_.number("gamma", 0.0, 1.0);
  tau_ = hp_.number("tau", 0.0, 1.0, true);
  noise_ = hp_.number("policy_noise", 0.0, 10.0);
  noise_clip_ = hp_.number("noise_clip", 0.0, 10.0);
  delay_ = hp_.integer("policy_delay", 1, 1 << 20);
  actor_ = nn::TanhActor(spec(S, A), init_rng_);
  target_actor_ = actor_;
  nn::MlpSpec cs = spec(S + A, 1, 2);
  if (dropout_key != nullptr) cs.dropout = hp_.number(dropout_key, 0.0, 0.99);
  critics_ = nn::Mlp(cs, init_rng_);
  target_critics_ = critics_;
  actor_opt_ = nn::Adam(actor_.net.params(), {hp_.number("actor_lr", 0.0, 1.0, true)});
  critic_opt_ = nn::Adam(critics_.params(), {hp_.number("critic_lr", 0.0, 1.0, true)});
}

bool Td3::bootstrap(const ConstRef& target_input, RowVector& value, RowVector&) {
  value =
      target_critics_.forward(target_input, ws_target_).colwise().minCoeff();  // clipped double Q
  return false;
}

bool Td3::actor_weights(const ConstRef&, RowVector&) { return false; }

Losses Td3::update(const Batch& b) {
  const Eigen::Index B = b.size();
  const float inv_b = 1.0f / static_cast<float>(B);
  // Target policy smoothing: a' = clip(mu'(s') + clip(N(0, sigma), -c, c), -1, 1).
  next_a_ = target_actor_.forward(b.next_state, ws_target_actor_);
  nn::fill_normal(eps_, A_, B, noise_rng_);
  next_a_ = (next_a_ + (noise_ * eps_).cwiseMax(-noise_clip_).cwiseMin(noise_clip_))
                .cwiseMax(-1.0f)
                .cwiseMin(1.0f);
  critic_input(b.next_state, next_a_, in_target_);
  const bool weighted = bootstrap(in_target_, value_, weight_);
  // y = r + gamma (1 - done) V(s', a').
  const RowVector y =
      b.reward.row(0).array() + continuation(gamma_, b).array() * value_.array();
  critic_input(b.state, b.action, in_);
  const double critic_loss = td_loss(critics_.forward(in_, ws_critic_, dropout_rng()), y,
                                     weighted ? &weight_ : nullptr, dq_);
  critics_.backward(in_, dq_, ws_critic_, nn::BackwardOptions{});
  critic_opt_.step();

  ++updates_;
  if (updates_ % delay_ == 0) {
    // Delayed policy update: maximise (the weighted) Q_1(s, mu(s)).
    const Matrix& a = actor_.forward(b.state, ws_actor_);
    critic_input(b.state, a, in_);
    const bool actor_weighted = actor_weights(in_, weight_);
    const Matrix& qa = critics_.forward(in_, ws_critic_, dropout_rng());
    dq_ = Matrix::Zero(2, B);
    if (actor_weighted) {
      last_actor_loss_ = -(qa.row(0).array() * weight_.array()).mean();
      dq_.row(0) = -weight_ * inv_b;
    } else {
      last_actor_loss_ = -qa.row(0).mean();
      dq_.row(0).setConstant(-inv_b);
    }
    critics_.input_backward(in_, dq_, ws_critic_, da_, S_, A_);
    actor_.backward(b.state, da_, ws_actor_);
    actor_opt_.step();
    target_actor_.net.soft_update_from(actor_.net, tau_);
    target_critics_.soft_update_from(critics_, tau_);
  }
  return {{"critic", critic_loss}, {"actor", last_actor_loss_}};
}

void Td3::act_normalised(const ConstRef& s, Matrix& a, Rng&) const { actor_.infer(s, a); }

Matrix Td3::q_normalised(const ConstRef& s, const ConstRef& a) const {
  Matrix in, q;
  critic_input(s, a, in);
  critics_.infer(in, q);
  return q;
}

std::vector<std::pair<std::string, nn::Mlp*>> Td3::networks() {
  return {{"actor", &actor_.net}, {"critics", &critics_}};
}

TrainingState Td3::training_state() {
  return {{{"target_actor", &target_actor_.net, &actor_.net},
           {"target_critics", &target_critics_, &critics_}},
          {{"actor_opt", &actor_opt_}, {"critic_opt", &critic_opt_}},
          {{"updates", &updates_}},
          {{"last_actor_loss", &last_actor_loss_}}};
}

}  // namespace mtf::agents
