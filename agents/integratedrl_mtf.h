// IntegratedRL-MTF (the IntegratedRL-MTF paper, Section 3.3): an actor-critic whose actor is
// penalised for leaving each transition's own exploration bounds (Formula 5)
// and for disagreement among M critics (Formula 4), and whose M critics each
// have their own target network (Formula 6).
#pragma once

#include <span>

#include "agents/agent_base.h"
#include "agents/nn/adam.h"

namespace mtf::agents {

/// Which exponent sign Formula 5 uses outside the bounds.
///  kIncreasing: d = exp(+excess / (beta * (upper - lower))): grows with the
///    excess, so its gradient pulls the action back inside (the reading the
///    text describes: "a penalty ... based on the deviation that exceeds ...").
///  kAsPrinted: d = exp(-excess / (beta * (upper - lower))) exactly as printed:
///    1 at the bound, decaying with the excess (its gradient pushes outward).
enum class PenaltyForm { kIncreasing, kAsPrinted };

/// Seed 000 Formula 5 for one action dimension: 0 strictly inside (lower, upper),
/// else the exponential of the (signed) excess over beta * (upper - lower).
/// lower and upper are the absolute bounds mu_bp(s) + lower_b and mu_bp(s) + upper_b.
/// Beyond an exponent of kMaxPenaltyExponent the penalty continues linearly (same
/// value and slope there), so it stays finite and still pulls far actions back.
double boundary_penalty(double action, double lower, double upper, double beta, PenaltyForm form);

/// The critic part of Formula 4 for one state: -mean_i Q_i + lambda * std_i Q_i
/// (population standard deviation over the M critics). Writes d/dQ_i into `grad`
/// (size M) and returns the value (and the std into `std_out` when given); at
/// std = 0 the std term's gradient is taken as 0.
double critic_objective(std::span<const float> q, float lambda, std::span<float> grad,
                        double* std_out = nullptr);
/// d/d action of boundary_penalty (0 inside; one-sided at the bounds).
double boundary_penalty_grad(double action, double lower, double upper, double beta, PenaltyForm form);
inline constexpr double kMaxPenaltyExponent = 30.0;

/// Formula 5 summed over action dimensions, per column (1 x B), zero where
/// has_bounds is 0 (a transition recorded without bounds is not penalised);
/// with grad, also d/d action (A x B).
void boundary_penalty_batch(const ConstRef& actions, const ConstRef& lower, const ConstRef& upper,
                            const ConstRef& has_bounds, float beta, PenaltyForm form, Matrix& penalty,
                            Matrix* grad);

class IntegratedRlMtf final : public AgentBase {
 public:
  static constexpr const char* kName = "integratedrl_mtf";
  static nlohmann::json defaults();
  IntegratedRlMtf(const nlohmann::json& hp, int state_dim, int action_dim, std::uint64_t seed);

 protected:
  Losses update(const Batch& b) override;
  void act_normalised(const ConstRef& s, Matrix& a, Rng& rng) const override;
  Matrix q_normalised(const ConstRef& s, const ConstRef& a) const override;
  std::vector<std::pair<std::string, nn::Mlp*>> networks() override;
  TrainingState training_state() override;

 private:
  float gamma_, eta_, beta_, lambda_, delta_, w_;
  int M_, L_;
  PenaltyForm form_;
  bool penalty_in_target_;
  nn::TanhActor actor_, target_actor_;
  nn::Mlp critics_, target_critics_;
  nn::Adam actor_opt_, critic_opt_;
  std::int64_t updates_ = 0;
  // Reused buffers.
  nn::MlpWorkspace ws_actor_, ws_target_actor_, ws_critic_, ws_target_;
  Matrix in_, in_target_, y_, dq_, da_, pen_, pen_grad_, pen_next_;
};

}  // namespace mtf::agents
