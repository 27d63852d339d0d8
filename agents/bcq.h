// BCQ as used by BatchRL-MTF (the BatchRL-MTF paper, Section 3.2, Algorithm 1, Eqs. 3 to 7):
// a conditional VAE G that generates data-like actions, a perturbation network
// P bounded by rho, two critics with clipped double Q, and a policy that picks
// the best of n perturbed generated actions.
#pragma once

#include "agents/agent_base.h"
#include "agents/nn/adam.h"

namespace mtf::agents {

class Bcq final : public AgentBase {
 public:
  static constexpr const char* kName = "bcq";
  static nlohmann::json defaults();
  Bcq(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

 protected:
  Losses update(const Batch& b) override;
  void act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const override;
  Matrix q_normalised(const ConstRef& s, const ConstRef& a) const override;
  bool deterministic() const override { return false; }
  std::vector<std::pair<std::string, nn::Mlp*>> networks() override;
  TrainingState training_state() override;

 private:
  float gamma_, eta_t_, lambda_, kl_weight_;
  int L_, n_;
  nn::ConditionalVae vae_;
  nn::Perturbation pert_, target_pert_;
  nn::Mlp critics_, target_critics_;
  nn::Adam vae_opt_, pert_opt_, critic_opt_;
  std::int64_t updates_ = 0;
  nn::MlpWorkspace ws_vae_, ws_pert_, ws_target_pert_, ws_critic_, ws_target_;
  Matrix a_hat_, in_, in_target_, s_rep_, dq_, da_;
};

}  // namespace mtf::agents
