// CQL+SAC (Kumar et al. 2020, CQL(H) with SAC; Haarnoja et al. 2018): a
// tanh-Gaussian actor with automatic entropy tuning and two critics whose TD
// loss is augmented by alpha * (logsumexp over sampled actions - Q(data)).
#pragma once

#include "agents/agent_base.h"
#include "agents/nn/adam.h"

namespace mtf::agents {

/// CQL(H)'s logsumexp term (Kumar et al. 2020, Eq. 4, importance-sampled as in
/// Appendix F). For critic i (row of q) and state j of B:
///   L_ij = T * logsumexp_c((Q_i(s_j, a_c) - log p(a_c)) / T)
/// over the n * blocks sampled actions c of state j, laid out in columns
/// k * n * B + j * n + r (block k, sample r); q is critics x (blocks * n * B)
/// and log_density 1 x (blocks * n * B). Returns (1/B) sum_i sum_j L_ij (each
/// critic's batch mean, summed over critics) and writes grad_scale * dL/dQ into
/// grad: the softmax weights divided by B. Computed with the max subtracted, so
/// large Q or log densities do not overflow.
double cql_logsumexp(const ConstRef& q, const ConstRef& log_density, int n, int blocks, float temperature,
                     float grad_scale, Matrix& grad);

class CqlSac final : public AgentBase {
 public:
  static constexpr const char* kName = "cql_sac";
  static nlohmann::json defaults();
  CqlSac(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

 protected:
  Losses update(const Batch& b) override;
  void act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const override;
  Matrix q_normalised(const ConstRef& s, const ConstRef& a) const override;
  std::vector<std::pair<std::string, nn::Mlp*>> networks() override;
  std::vector<nn::Param*> extra_params() override { return {&log_alpha_}; }
  TrainingState training_state() override;

 private:
  /// CQL(H)'s term for the critics: its gradient accumulated after the TD
  /// gradient (both backward passes), and the term's loss.
  double conservative_term(const Batch& b, double q_data);

  float gamma_, tau_, cql_alpha_, cql_temperature_, target_entropy_;
  int n_;
  bool backup_entropy_;
  nn::TanhGaussianActor actor_;
  nn::Mlp critics_, target_critics_;
  nn::Param log_alpha_;
  nn::Adam actor_opt_, critic_opt_, alpha_opt_;
  nn::MlpWorkspace ws_actor_, ws_critic_, ws_target_, ws_cql_;
  Matrix in_, in_cql_, s_rep_, a_all_, logdens_, dq_, dq_cql_, da_, dlogp_;
};

}  // namespace mtf::agents
