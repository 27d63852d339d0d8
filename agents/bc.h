// Behaviour cloning: a tanh actor regressed onto the data's actions. The floor
// every offline agent should beat.
#pragma once

#include "agents/agent_base.h"
#include "agents/nn/adam.h"

namespace mtf::agents {

class BehaviourCloning final : public AgentBase {
 public:
  static constexpr const char* kName = "bc";
  static nlohmann::json defaults();
  BehaviourCloning(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

 protected:
  Losses update(const Batch& b) override;
  void act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const override;
  std::vector<std::pair<std::string, nn::Mlp*>> networks() override { return {{"actor", &actor_.net}}; }
  TrainingState training_state() override { return {{}, {{"opt", &opt_}}, {}, {}}; }

 private:
  nn::TanhActor actor_;
  nn::Adam opt_;
  nn::MlpWorkspace ws_;
  Matrix da_;
};

}  // namespace mtf::agents
