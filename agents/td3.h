// TD3 (Fujimoto et al. 2018): clipped double Q, target policy smoothing,
// delayed policy updates.
#pragma once

#include "agents/agent_base.h"
#include "agents/nn/adam.h"

namespace mtf::agents {

class Td3 final : public AgentBase {
 public:
  static constexpr const char* kName = "td3";
  static nlohmann::json defaults();
  Td3(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

 protected:
  Losses update(const Batch& b) override;
  void act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const override;
  Matrix q_normalised(const ConstRef& s, const ConstRef& a) const override;
  std::vector<std::pair<std::string, nn::Mlp*>> networks() override;
  void after_load() override;

 private:
  float gamma_, tau_, noise_, noise_clip_;
  int delay_;
  nn::TanhActor actor_, target_actor_;
  nn::Mlp critics_, target_critics_;
  nn::Adam actor_opt_, critic_opt_;
  std::int64_t updates_ = 0;
  double last_actor_loss_ = 0.0;
  nn::MlpWorkspace ws_actor_, ws_target_actor_, ws_critic_, ws_target_;
  Matrix in_, in_target_, next_a_, eps_, y_, dq_, da_;
};

}  // namespace mtf::agents
