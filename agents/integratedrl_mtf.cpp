// IntegratedRL-MTF, IntegratedRL-MTF Formulas 4 to 6, Section 4.2 defaults.
#include "agents/integratedrl_mtf.h"

#include <algorithm>
#include <cmath>

namespace mtf::agents {

double boundary_penalty(double action, double lower, double upper, double beta, PenaltyForm form) {
  if (action > lower && action < upper) return 0.0;
  const double scale = beta * std::max(upper - lower, 1e-6);
  const double excess = action >= upper ? action - upper : lower - action;
  const double sign = form == PenaltyForm::kIncreasing ? 1.0 : -1.0;
  const double e = sign * excess / scale;
  // Past the cap the exponential continues linearly (same value and slope at the
  // cap), so an actor far outside narrow bounds is still pulled back.
  if (e > kMaxPenaltyExponent) return std::exp(kMaxPenaltyExponent) * (1.0 + (e - kMaxPenaltyExponent));
  return std::exp(e);
}

double boundary_penalty_grad(double action, double lower, double upper, double beta, PenaltyForm form) {
  if (action > lower && action < upper) return 0.0;
  const double scale = beta * std::max(upper - lower, 1e-6);
  const double excess = action >= upper ? action - upper : lower - action;
  const double sign = form == PenaltyForm::kIncreasing ? 1.0 : -1.0;
  const double e = sign * excess / scale;
  const double dexcess = action >= upper ? 1.0 : -1.0;
  return std::exp(std::min(e, kMaxPenaltyExponent)) * sign / scale * dexcess;  // linear past the cap
}

double critic_objective(std::span<const float> q, float lambda, std::span<float> grad, double* std_out) {
  const auto m = static_cast<double>(q.size());
  double mean = 0.0;
  for (const float x : q) mean += x;
  mean /= m;
  double var = 0.0;
  for (const float x : q) var += (x - mean) * (x - mean);
  const double std = std::sqrt(var / m);
  if (std_out) *std_out = std;
  // d(-mean)/dQ_i = -1/M; d(std)/dQ_i = (Q_i - mean) / (M std).
  const double s = std > 1e-12 ? lambda / (m * std) : 0.0;
  for (std::size_t i = 0; i < q.size(); ++i)
    grad[i] = static_cast<float>((q[i] - mean) * s - 1.0 / m);
  return -mean + lambda * std;
}

void boundary_penalty_batch(const ConstRef& a, const ConstRef& lower, const ConstRef& upper,
                            const ConstRef& has_bounds, float beta, PenaltyForm form, Matrix& penalty,
                            Matrix* grad) {
  const Eigen::Index A = a.rows(), B = a.cols();
  penalty = Matrix::Zero(1, B);
  if (grad) *grad = Matrix::Zero(A, B);
  for (Eigen::Index j = 0; j < B; ++j) {
    if (has_bounds(0, j) == 0.0f) continue;
    double sum = 0.0;
    for (Eigen::Index i = 0; i < A; ++i) {
      sum += boundary_penalty(a(i, j), lower(i, j), upper(i, j), beta, form);
      if (grad) (*grad)(i, j) = static_cast<float>(boundary_penalty_grad(a(i, j), lower(i, j), upper(i, j), beta, form));
    }
    penalty(0, j) = static_cast<float>(sum);
  }
}

nlohmann::json IntegratedRlMtf::defaults() {
  nlohmann::json d = common_defaults();
  d.update({
      {"gamma", 0.9},            // Section 4.2
      {"eta", 1.2},              // Formula 4 weight of the boundary penalty
      {"beta", 0.3},             // Formula 5 temperature
      {"lambda", 0.2},           // Formula 4 weight of the critics' std
      {"critics", 24},           // m, Section 4.2
      {"soft_update", 0.08},     // w, Section 4.2
      {"target_update_every", 15},  // L, Section 4.2
      {"delta", 1.0},            // Formula 6 weight (not given in the paper)
      {"critic_penalty", "loss"},  // "loss": Formula 6 as printed; "target": subtract delta*d from the bootstrap
      {"boundary_penalty", "increasing"},  // see PenaltyForm
      {"actor_lr", 3e-4},        // not given in the paper (Adam, Section 4.2)
      {"critic_lr", 3e-4},
  });
  return d;
}

IntegratedRlMtf::IntegratedRlMtf(const nlohmann::json& hp, int S, int A, std::uint64_t seed)
    : AgentBase(kName, Hyperparameters(kName, defaults(), hp), S, A, seed) {
  gamma_ = hp_.number("gamma", 0.0, 1.0);
  eta_ = hp_.number("eta", 0.0, 1e6);
  beta_ = hp_.number("beta", 0.0, 1e6, true);
  lambda_ = hp_.number("lambda", 0.0, 1e6);
  delta_ = hp_.number("delta", 0.0, 1e6);
  w_ = hp_.number("soft_update", 0.0, 1.0, true);
  M_ = hp_.integer("critics", 1, 4096);
  L_ = hp_.integer("target_update_every", 1, 1 << 30);
  form_ = hp_.choice("boundary_penalty", {"increasing", "as_printed"}) == "increasing" ? PenaltyForm::kIncreasing
                                                                                      : PenaltyForm::kAsPrinted;
  penalty_in_target_ = hp_.choice("critic_penalty", {"loss", "target"}) == "target";
  const float actor_lr = hp_.number("actor_lr", 0.0, 1.0, true);
  const float critic_lr = hp_.number("critic_lr", 0.0, 1.0, true);

  actor_ = nn::TanhActor(spec(S, A), init_rng_);
  target_actor_ = actor_;
  // The critics are initialised randomly and independently (Section 3.3.2).
  critics_ = nn::Mlp(spec(S + A, 1, M_), init_rng_);
  target_critics_ = critics_;
  actor_opt_ = nn::Adam(actor_.net.params(), {actor_lr});
  critic_opt_ = nn::Adam(critics_.params(), {critic_lr});
}

Losses IntegratedRlMtf::update(const Batch& b) {
  const Eigen::Index B = b.size();
  const float inv_b = 1.0f / static_cast<float>(B);

  // ---- Critics, Formula 6: Q_i(s, a) -> r + gamma * Q'_i(s', mu'(s')), each with its own target.
  const Matrix& next_a = target_actor_.forward(b.next_state, ws_target_actor_);
  boundary_penalty_batch(next_a, b.next_lower, b.next_upper, b.next_has_bounds, beta_, form_, pen_next_, nullptr);
  critic_input(b.next_state, next_a, in_target_);
  const Matrix& q_next = target_critics_.forward(in_target_, ws_target_);
  const Matrix discount = continuation(gamma_, b);  // 1 x B
  y_ = (q_next.array().rowwise() * discount.row(0).array()).rowwise() + b.reward.row(0).array();
  if (penalty_in_target_)
    y_.array().rowwise() -= delta_ * (discount.array() * pen_next_.array()).row(0);
  critic_input(b.state, b.action, in_);
  const Matrix& q = critics_.forward(in_, ws_critic_);
  dq_ = q - y_;
  const double td = dq_.squaredNorm() * inv_b / M_;  // mean over critics of each critic's mean squared TD error
  // As printed, Formula 6 adds delta * d(mu'(s')) to each critic's loss; it does
  // not depend on the critic's weights, so it is reported but has no gradient.
  const double critic_penalty = penalty_in_target_ ? 0.0 : delta_ * pen_next_.mean();
  dq_ *= 2.0f * inv_b;
  critics_.backward(in_, dq_, ws_critic_, nn::BackwardOptions{});
  critic_opt_.step();

  // ---- Actor, Formula 4: -mean_i Q_i + eta * d(mu(s), bounds) + lambda * std_i Q_i.
  const Matrix& a = actor_.forward(b.state, ws_actor_);
  critic_input(b.state, a, in_);
  const Matrix& qa = critics_.forward(in_, ws_critic_);  // critics after this step's update
  boundary_penalty_batch(a, b.lower, b.upper, b.has_bounds, beta_, form_, pen_, &pen_grad_);
  // dL/dQ_i per column (critic_objective), averaged over the batch.
  dq_.resize(M_, B);
  double actor_loss = 0.0, q_std = 0.0, q_mean = 0.0;
  for (Eigen::Index j = 0; j < B; ++j) {
    const std::span<const float> qj(qa.col(j).data(), static_cast<std::size_t>(M_));
    std::span<float> gj(dq_.col(j).data(), static_cast<std::size_t>(M_));
    double std_j = 0.0;
    const double objective = critic_objective(qj, lambda_, gj, &std_j);
    actor_loss += objective + eta_ * pen_(0, j);
    q_std += std_j;
    q_mean += lambda_ * std_j - objective;  // the critics' mean Q at (s, mu(s))
  }
  dq_ *= inv_b;
  actor_loss *= inv_b;
  q_std *= inv_b;
  q_mean *= inv_b;
  // Only dQ/da through the critics: no critic weight gradients here.
  critics_.input_backward(in_, dq_, ws_critic_, da_, S_, A_);
  da_ += (eta_ * inv_b) * pen_grad_;
  actor_.backward(b.state, da_, ws_actor_);
  actor_opt_.step();

  // ---- Targets: soft update with rate w every L steps (Section 4.2).
  ++updates_;
  if (updates_ % L_ == 0) {
    target_actor_.net.soft_update_from(actor_.net, w_);
    target_critics_.soft_update_from(critics_, w_);
  }
  // Formula 4's three terms, each as it enters the actor's loss (they sum to
  // "actor"): what share of the actor's objective is the critics' value, the
  // boundary penalty and the critics' disagreement.
  return {{"critic", td + critic_penalty}, {"actor", actor_loss}, {"boundary_penalty", pen_.mean()},
          {"q_std", q_std},
          {"actor_q_term", -q_mean},
          {"actor_penalty_term", eta_ * pen_.mean()},
          {"actor_std_term", lambda_ * q_std}};
}

void IntegratedRlMtf::act_normalised(const ConstRef& s, Matrix& a, Rng&) const { actor_.infer(s, a); }

Matrix IntegratedRlMtf::q_normalised(const ConstRef& s, const ConstRef& a) const {
  Matrix in, q;
  critic_input(s, a, in);
  critics_.infer(in, q);
  return q;
}

std::vector<std::pair<std::string, nn::Mlp*>> IntegratedRlMtf::networks() {
  return {{"actor", &actor_.net}, {"critics", &critics_}};
}

TrainingState IntegratedRlMtf::training_state() {
  return {{{"target_actor", &target_actor_.net, &actor_.net}, {"target_critics", &target_critics_, &critics_}},
          {{"actor_opt", &actor_opt_}, {"critic_opt", &critic_opt_}},
          {{"updates", &updates_}},
          {}};
}

}  // namespace mtf::agents
