// IQL (Kostrikov et al. 2022, Algorithm 1; Eqs. 5, 6, 7): expectile tau = 0.7,
// temperature beta = 3, advantage weights clipped at 100, learning rates 3e-4,
// target critics with soft rate 0.005.
#include "agents/iql.h"

#include <algorithm>
#include <cmath>

namespace mtf::agents {

double expectile_loss(const ConstRef& q, const ConstRef& v, float tau, Matrix& grad_v) {
  const Eigen::Index B = q.cols();
  const float inv_b = 1.0f / static_cast<float>(B);
  grad_v.resize(1, B);
  double loss = 0.0;
  for (Eigen::Index j = 0; j < B; ++j) {
    const float u = q(0, j) - v(0, j);
    const float w = u < 0.0f ? 1.0f - tau : tau;  // |tau - 1(u < 0)|
    loss += w * u * u;
    grad_v(0, j) = -2.0f * w * u * inv_b;
  }
  return loss * inv_b;
}

double awr_loss(const ConstRef& advantage, const ConstRef& log_prob, float temperature, float max_weight,
                Matrix& grad_log_prob) {
  const Eigen::Index B = advantage.cols();
  const float inv_b = 1.0f / static_cast<float>(B);
  grad_log_prob.resize(1, B);
  double loss = 0.0;
  for (Eigen::Index j = 0; j < B; ++j) {
    const float w = std::min(std::exp(temperature * advantage(0, j)), max_weight);
    loss -= w * log_prob(0, j);
    grad_log_prob(0, j) = -w * inv_b;
  }
  return loss * inv_b;
}

nlohmann::json Iql::defaults() {
  nlohmann::json d = common_defaults();
  d.update({{"gamma", 0.99},
            {"tau", 0.005},
            {"expectile", 0.7},
            {"temperature", 3.0},
            {"max_weight", 100.0},
            {"actor_lr", 3e-4},
            {"critic_lr", 3e-4},
            {"value_lr", 3e-4}});
  return d;
}

Iql::Iql(const nlohmann::json& hp, int S, int A, std::uint64_t seed)
    : AgentBase(kName, Hyperparameters(kName, defaults(), hp), S, A, seed) {
  gamma_ = hp_.number("gamma", 0.0, 1.0);
  tau_ = hp_.number("tau", 0.0, 1.0, true);
  expectile_ = hp_.number("expectile", 0.0, 1.0, true);
  temperature_ = hp_.number("temperature", 0.0, 1e6);
  max_weight_ = hp_.number("max_weight", 0.0, 1e30, true);
  actor_ = nn::GaussianActor(spec(S, A), init_rng_);
  critics_ = nn::Mlp(spec(S + A, 1, 2), init_rng_);
  target_critics_ = critics_;
  value_ = nn::Mlp(spec(S, 1), init_rng_);
  actor_opt_ = nn::Adam(actor_.params(), {hp_.number("actor_lr", 0.0, 1.0, true)});
  critic_opt_ = nn::Adam(critics_.params(), {hp_.number("critic_lr", 0.0, 1.0, true)});
  value_opt_ = nn::Adam(value_.params(), {hp_.number("value_lr", 0.0, 1.0, true)});
}

Losses Iql::update(const Batch& b) {
  const Eigen::Index B = b.size();
  const float inv_b = 1.0f / static_cast<float>(B);
  // ---- Eq. 5: V(s) as the tau-expectile of min_j Q'_j(s, a) over the data's actions.
  critic_input(b.state, b.action, in_);
  const RowVector q_target = target_critics_.forward(in_, ws_target_).colwise().minCoeff();
  const RowVector v = value_.forward(b.state, ws_value_).row(0);
  const double value_loss = expectile_loss(q_target, v, expectile_, dv_);
  value_.backward(b.state, dv_, ws_value_, nn::BackwardOptions{});
  value_opt_.step();
  // The actor is weighted with the updated value function, as in the reference IQL.
  const RowVector u_new = q_target - value_.forward(b.state, ws_value_).row(0);

  // ---- Eq. 7: advantage-weighted regression, weights exp(beta (Q - V)) clipped.
  actor_.log_prob(b.state, b.action, ws_actor_);
  const double actor_loss = awr_loss(u_new, actor_.logp, temperature_, max_weight_, dlogp_);
  actor_.backward(b.state, b.action, dlogp_, ws_actor_);
  actor_opt_.step();

  // ---- Eq. 6: Q_j(s, a) -> r + gamma (1 - done) V(s'), with the updated V.
  value_.infer(b.next_state, v_next_);
  const RowVector y = b.reward.row(0).array() + continuation(gamma_, b).array() * v_next_.row(0).array();
  dq_ = critics_.forward(in_, ws_critic_).rowwise() - y;
  const double critic_loss = dq_.squaredNorm() * inv_b;
  dq_ *= 2.0f * inv_b;
  critics_.backward(in_, dq_, ws_critic_, nn::BackwardOptions{});
  critic_opt_.step();
  target_critics_.soft_update_from(critics_, tau_);
  return {{"value", value_loss}, {"actor", actor_loss}, {"critic", critic_loss}};
}

void Iql::act_normalised(const ConstRef& s, Matrix& a, Rng&) const { actor_.infer_mean(s, a); }

Matrix Iql::q_normalised(const ConstRef& s, const ConstRef& a) const {
  Matrix in, q;
  critic_input(s, a, in);
  critics_.infer(in, q);
  return q;
}

std::vector<std::pair<std::string, nn::Mlp*>> Iql::networks() {
  return {{"actor", &actor_.net}, {"critics", &critics_}, {"value", &value_}};
}

TrainingState Iql::training_state() {
  return {{{"target_critics", &target_critics_, &critics_}},
          {{"actor_opt", &actor_opt_}, {"critic_opt", &critic_opt_}, {"value_opt", &value_opt_}},
          {},
          {}};
}

}  // namespace mtf::agents
