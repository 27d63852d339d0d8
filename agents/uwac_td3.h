// UWAC+TD3 (Wu et al. 2021, "Uncertainty Weighted Actor-Critic"), the variant
// seed 002 compares: TD3 whose critic and actor losses are weighted per sample
// by clamp(exp(-beta * Var[Q]), weight_min, weight_max), Var from MC dropout.
#pragma once

#include "agents/agent_base.h"
#include "agents/nn/adam.h"

namespace mtf::agents {

class UwacTd3 final : public AgentBase {
 public:
  static constexpr const char* kName = "uwac_td3";
  static nlohmann::json defaults();
  UwacTd3(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

 protected:
  Losses update(const Batch& b) override;
  void act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const override;
  Matrix q_normalised(const ConstRef& s, const ConstRef& a) const override;
  std::vector<std::pair<std::string, nn::Mlp*>> networks() override;
  void after_load() override;

 private:
  RowVector weights(const Matrix& variance) const;
  float gamma_, tau_, noise_, noise_clip_, beta_, wmin_, wmax_;
  int delay_, samples_;
  nn::TanhActor actor_, target_actor_;
  nn::Mlp critics_, target_critics_;
  nn::Adam actor_opt_, critic_opt_;
  std::int64_t updates_ = 0;
  double last_actor_loss_ = 0.0;
  nn::MlpWorkspace ws_actor_, ws_target_actor_, ws_critic_, ws_mc_;
  Matrix in_, in_target_, next_a_, eps_, mean_, var_, dq_, da_;
};

}  // namespace mtf::agents
