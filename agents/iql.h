// IQL (Kostrikov, Nair & Levine 2022): in-sample learning with an expectile
// value function and advantage-weighted policy extraction.
#pragma once

#include "agents/agent_base.h"
#include "agents/nn/adam.h"

namespace mtf::agents {

/// IQL's expectile value loss (Kostrikov et al. 2022, Eq. 5) with u = q - v
/// (1 x B each): L = (1/B) sum_j |tau - 1(u_j < 0)| u_j^2. Writes dL/dv (1 x B)
/// into grad_v; q is a constant (the target critics). At u = 0 both sides agree
/// (value and gradient 0).
double expectile_loss(const ConstRef& q, const ConstRef& v, float tau, Matrix& grad_v);

/// IQL's advantage-weighted actor loss (Eq. 7):
///   L = -(1/B) sum_j min(exp(temperature * advantage_j), max_weight) * log_prob_j.
/// The weights are constants (no gradient flows into the advantage); writes
/// dL/dlog_prob (1 x B) into grad_log_prob.
double awr_loss(const ConstRef& advantage, const ConstRef& log_prob, float temperature, float max_weight,
                Matrix& grad_log_prob);

class Iql final : public AgentBase {
 public:
  static constexpr const char* kName = "iql";
  static nlohmann::json defaults();
  Iql(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

 protected:
  Losses update(const Batch& b) override;
  void act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const override;
  Matrix q_normalised(const ConstRef& s, const ConstRef& a) const override;
  std::vector<std::pair<std::string, nn::Mlp*>> networks() override;
  std::vector<nn::Param*> extra_params() override { return {&actor_.log_std}; }
  TrainingState training_state() override;

 private:
  float gamma_, tau_, expectile_, temperature_, max_weight_;
  nn::GaussianActor actor_;
  nn::Mlp critics_, target_critics_, value_;
  nn::Adam actor_opt_, critic_opt_, value_opt_;
  nn::MlpWorkspace ws_actor_, ws_critic_, ws_target_, ws_value_;
  Matrix in_, dq_, dv_, dlogp_, v_next_;
};

}  // namespace mtf::agents
