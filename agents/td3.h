// TD3 (Fujimoto et al. 2018): clipped double Q, target policy smoothing,
// delayed policy updates. UWAC+TD3 (uwac_td3.h) derives from it and only
// supplies per-sample weights and dropout through the protected hooks.
#pragma once

#include "agents/agent_base.h"
#include "agents/nn/adam.h"

namespace mtf::agents {

/// The critics' TD loss: (1/B) sum_i sum_j w_j (Q_ij - y_j)^2 over critics i and
/// samples j (q is critics x B, y is 1 x B), with w_j = 1 when `weight` is null.
/// Writes dL/dQ (critics x B) into grad. Each critic gets the full per-sample
/// mean, so the loss of two critics is the sum of two mean squared errors.
double td_loss(const ConstRef& q, const ConstRef& y, const RowVector* weight, Matrix& grad);

class Td3 : public AgentBase {
 public:
  static constexpr const char* kName = "td3";
  static nlohmann::json defaults();
  Td3(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

 protected:
  /// For derived agents: `hp` already merged with the derived agent's defaults
  /// (a superset of Td3::defaults()); when `dropout_key` is given, the critics
  /// carry dropout with the rate read from that key (in [0, 0.99]).
  Td3(std::string name, Hyperparameters hp, int state_dim, int action_dim, std::uint64_t seed,
      const char* dropout_key);

  Losses update(const Batch& b) final;
  void act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const final;
  Matrix q_normalised(const ConstRef& s, const ConstRef& a) const final;
  std::vector<std::pair<std::string, nn::Mlp*>> networks() final;
  TrainingState training_state() final;

  /// Hook: the bootstrap value per column of target_input = [s'; a'] (1 x B)
  /// and, optionally, per-sample weights of the critic loss. TD3: min_i Q'_i
  /// of the target critics, no weights (returns false).
  virtual bool bootstrap(const ConstRef& target_input, RowVector& value, RowVector& weight);
  /// Hook: per-sample weights of the actor loss at input = [s; mu(s)], called
  /// before the critics are evaluated there. TD3: none (returns false).
  virtual bool actor_weights(const ConstRef& input, RowVector& weight);
  /// Hook: the stream of dropout masks for the critics' training forward
  /// passes, or null for none (TD3).
  virtual Rng* dropout_rng() { return nullptr; }

  float gamma_, tau_, noise_, noise_clip_;
  int delay_;
  nn::TanhActor actor_, target_actor_;
  nn::Mlp critics_, target_critics_;
  nn::Adam actor_opt_, critic_opt_;
  std::int64_t updates_ = 0;
  double last_actor_loss_ = 0.0;
  nn::MlpWorkspace ws_actor_, ws_target_actor_, ws_critic_, ws_target_;
  Matrix in_, in_target_, next_a_, eps_, dq_, da_;
  RowVector value_, weight_;
};

}  // namespace mtf::agents
