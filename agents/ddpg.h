// DDPG (Lillicrap et al. 2016): deterministic actor, one critic, soft targets.
#pragma once

#include "agents/agent_base.h"
#include "agents/nn/adam.h"

namespace mtf::agents {

class Ddpg final : public AgentBase {
 public:
  static constexpr const char* kName = "ddpg";
  static nlohmann::json defaults();
  Ddpg(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

 protected:
  Losses update(const Batch& b) override;
  void act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const override;
  Matrix q_normalised(const ConstRef& s, const ConstRef& a) const override;
  std::vector<std::pair<std::string, nn::Mlp*>> networks() override;
  TrainingState training_state() override;

 private:
  float gamma_, tau_;
  nn::TanhActor actor_, target_actor_;
  nn::Mlp critic_, target_critic_;
  nn::Adam actor_opt_, critic_opt_;
  nn::MlpWorkspace ws_actor_, ws_target_actor_, ws_critic_, ws_target_;
  Matrix in_, in_target_, dq_, da_;
};

}  // namespace mtf::agents
