// CQL(H)+SAC (Kumar et al. 2020, Eq. 4 and Appendix F): the conservative term
// for critic i is
//   cql_alpha * mean_s [ T * logsumexp_j((Q_i(s, a_j) - log p(a_j)) / T) - Q_i(s, a_data) ]
// over n uniform actions (density 2^-A), n actions from pi(.|s) and n from
// pi(.|s') (importance-corrected by their log densities). SAC with automatic
// entropy: target entropy -A. Defaults follow the CQL reference code:
// cql_alpha 5, n 10, policy lr 1e-4, critic lr 3e-4, no entropy in the backup.
// With cql_alpha 0 the conservative term and its sampled actions are skipped:
// the step is SAC's (and draws fewer noise values than a step with the term).
#include "agents/cql_sac.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace mtf::agents {

double cql_logsumexp(const ConstRef& q, const ConstRef& logdens, int n, int blocks, float T, float grad_scale,
                     Matrix& grad) {
  const Eigen::Index nB = q.cols() / blocks, B = nB / n;
  assert(nB * blocks == q.cols() && B * n == nB && logdens.cols() == q.cols());
  const float inv_b = 1.0f / static_cast<float>(B);
  grad.resize(q.rows(), q.cols());
  double total = 0.0;
  for (Eigen::Index i = 0; i < q.rows(); ++i)
    for (Eigen::Index j = 0; j < B; ++j) {
      float mx = -std::numeric_limits<float>::infinity();
      for (int k = 0; k < blocks; ++k)
        for (int r = 0; r < n; ++r) {
          const Eigen::Index c = k * nB + j * n + r;
          mx = std::max(mx, (q(i, c) - logdens(0, c)) / T);
        }
      double sum = 0.0;
      for (int k = 0; k < blocks; ++k)
        for (int r = 0; r < n; ++r) {
          const Eigen::Index c = k * nB + j * n + r;
          const float e = std::exp((q(i, c) - logdens(0, c)) / T - mx);
          grad(i, c) = e;
          sum += e;
        }
      total += T * (mx + std::log(sum));
      // d/dQ of T * logsumexp(x / T) is the softmax weight.
      for (int k = 0; k < blocks; ++k)
        for (int r = 0; r < n; ++r) {
          const Eigen::Index c = k * nB + j * n + r;
          grad(i, c) = static_cast<float>(grad(i, c) / sum) * grad_scale * inv_b;
        }
    }
  return total / static_cast<double>(B);
}

nlohmann::json CqlSac::defaults() {
  nlohmann::json d = common_defaults();
  d.update({{"gamma", 0.99},
            {"tau", 0.005},
            {"actor_lr", 1e-4},
            {"critic_lr", 3e-4},
            {"alpha_lr", 1e-4},
            {"initial_alpha", 1.0},
            {"target_entropy_scale", 1.0},  // target entropy = -scale * action_dim
            {"cql_alpha", 5.0},
            {"cql_samples", 10},
            {"cql_temperature", 1.0},
            {"backup_entropy", false}});
  return d;
}

CqlSac::CqlSac(const nlohmann::json& hp, int S, int A, std::uint64_t seed)
    : AgentBase(kName, Hyperparameters(kName, defaults(), hp), S, A, seed) {
  gamma_ = hp_.number("gamma", 0.0, 1.0);
  tau_ = hp_.number("tau", 0.0, 1.0, true);
  cql_alpha_ = hp_.number("cql_alpha", 0.0, 1e6);
  cql_temperature_ = hp_.number("cql_temperature", 0.0, 1e6, true);
  target_entropy_ = -hp_.number("target_entropy_scale", -1e3, 1e3) * static_cast<float>(A);
  n_ = hp_.integer("cql_samples", 1, 1024);
  backup_entropy_ = hp_.flag("backup_entropy");
  actor_ = nn::TanhGaussianActor(spec(S, 2 * A), init_rng_);
  critics_ = nn::Mlp(spec(S + A, 1, 2), init_rng_);
  target_critics_ = critics_;
  const float a0 = hp_.number("initial_alpha", 0.0, 1e6, true);
  log_alpha_ = {"log_alpha", nn::Matrix::Constant(1, 1, std::log(a0)), nn::Matrix::Zero(1, 1)};
  actor_opt_ = nn::Adam(actor_.net.params(), {hp_.number("actor_lr", 0.0, 1.0, true)});
  critic_opt_ = nn::Adam(critics_.params(), {hp_.number("critic_lr", 0.0, 1.0, true)});
  alpha_opt_ = nn::Adam({&log_alpha_}, {hp_.number("alpha_lr", 0.0, 1.0, true)});
}

Losses CqlSac::update(const Batch& b) {
  const Eigen::Index B = b.size();
  const float inv_b = 1.0f / static_cast<float>(B);
  const float alpha = std::exp(log_alpha_.value(0, 0));

  // ---- SAC actor: minimise E[alpha log pi(a|s) - min_i Q_i(s, a)], a ~ pi (reparameterised).
  actor_.sample(b.state, noise_rng_, ws_actor_);
  critic_input(b.state, actor_.action, in_);
  const Matrix& qa = critics_.forward(in_, ws_critic_);
  dq_ = Matrix::Zero(2, B);
  double actor_loss = 0.0;
  for (Eigen::Index j = 0; j < B; ++j) {
    Eigen::Index i;
    const float qmin = qa.col(j).minCoeff(&i);
    actor_loss += alpha * actor_.log_prob(0, j) - qmin;
    dq_(i, j) = -inv_b;
  }
  actor_loss *= inv_b;
  critics_.input_backward(in_, dq_, ws_critic_, da_, S_, A_);
  dlogp_ = Matrix::Constant(1, B, alpha * inv_b);
  const double mean_logp = actor_.log_prob.mean();
  actor_.backward(b.state, da_, dlogp_, ws_actor_);
  actor_opt_.step();
  // Automatic entropy: minimise -log_alpha * (log pi + target entropy).
  log_alpha_.grad(0, 0) = static_cast<float>(-(mean_logp + target_entropy_));
  alpha_opt_.step();

  // ---- TD target: y = r + gamma (1 - done) (min_i Q'_i(s', a') [- alpha log pi(a'|s')]), a' ~ pi(s').
  actor_.sample(b.next_state, noise_rng_, ws_actor_);
  const Matrix next_logp = actor_.log_prob;
  critic_input(b.next_state, actor_.action, in_);
  const Matrix& qt = target_critics_.forward(in_, ws_target_);
  RowVector backup = qt.colwise().minCoeff();
  if (backup_entropy_) backup -= alpha * next_logp.row(0);
  const RowVector y = b.reward.row(0).array() + continuation(gamma_, b).array() * backup.array();
  critic_input(b.state, b.action, in_);
  const Matrix& q = critics_.forward(in_, ws_critic_);
  dq_ = q.rowwise() - y;
  const double td_loss = dq_.squaredNorm() * inv_b;
  dq_ *= 2.0f * inv_b;
  dq_.array() -= cql_alpha_ * inv_b;  // the -cql_alpha * Q(s, a_data) part
  const double q_data = q.mean();

  // ---- Conservative term (skipped when cql_alpha is 0: it would add nothing
  // to the gradient, and its sampled actions cost most of the step).
  double cql_loss = 0.0;
  if (cql_alpha_ > 0.0) {
    cql_loss = conservative_term(b, q_data);
  } else {
    critics_.backward(in_, dq_, ws_critic_, nn::BackwardOptions{});
  }
  critic_opt_.step();
  target_critics_.soft_update_from(critics_, tau_);
  return {{"critic", td_loss}, {"cql", cql_loss}, {"actor", actor_loss}, {"alpha", alpha}};
}

double CqlSac::conservative_term(const Batch& b, double q_data) {
  const Eigen::Index B = b.size();
  // ---- Conservative term: columns [uniform | pi(.|s) | pi(.|s')], n per state each,
  // all evaluated at s. Column (block k, state j, sample r) = k * nB + j * n + r.
  const Eigen::Index nB = B * n_;
  s_rep_.resize(S_, nB);
  Matrix sn_rep(S_, nB);
  for (Eigen::Index j = 0; j < B; ++j)
    for (int r = 0; r < n_; ++r) {
      s_rep_.col(j * n_ + r) = b.state.col(j);
      sn_rep.col(j * n_ + r) = b.next_state.col(j);
    }
  a_all_.resize(A_, 3 * nB);
  logdens_.resize(1, 3 * nB);
  Matrix uni;
  nn::fill_uniform(uni, A_, nB, -1.0f, 1.0f, noise_rng_);
  a_all_.leftCols(nB) = uni;
  logdens_.leftCols(nB).setConstant(-static_cast<float>(A_) * std::log(2.0f));  // log U[-1,1]^A
  actor_.sample(s_rep_, noise_rng_, ws_actor_);
  a_all_.middleCols(nB, nB) = actor_.action;
  logdens_.middleCols(nB, nB) = actor_.log_prob;
  actor_.sample(sn_rep, noise_rng_, ws_actor_);
  a_all_.rightCols(nB) = actor_.action;
  logdens_.rightCols(nB) = actor_.log_prob;
  Matrix s_all(S_, 3 * nB);
  for (int k = 0; k < 3; ++k) s_all.middleCols(k * nB, nB) = s_rep_;
  critic_input(s_all, a_all_, in_cql_);
  const Matrix& qs = critics_.forward(in_cql_, ws_cql_);
  // Each critic's loss is T * logsumexp(...) averaged over the states; reported averaged over the critics.
  const double lse_mean = cql_logsumexp(qs, logdens_, n_, 3, cql_temperature_, cql_alpha_, dq_cql_) / 2.0;
  const double cql_loss = cql_alpha_ * (lse_mean - q_data);
  critics_.backward(in_, dq_, ws_critic_, nn::BackwardOptions{});
  nn::BackwardOptions acc;
  acc.accumulate = true;
  critics_.backward(in_cql_, dq_cql_, ws_cql_, acc);
  return cql_loss;
}

void CqlSac::act_normalised(const ConstRef& s, Matrix& a, Rng&) const { actor_.infer_mean(s, a); }

Matrix CqlSac::q_normalised(const ConstRef& s, const ConstRef& a) const {
  Matrix in, q;
  critic_input(s, a, in);
  critics_.infer(in, q);
  return q;
}

std::vector<std::pair<std::string, nn::Mlp*>> CqlSac::networks() {
  return {{"actor", &actor_.net}, {"critics", &critics_}};
}

TrainingState CqlSac::training_state() {
  return {{{"target_critics", &target_critics_, &critics_}},
          {{"actor_opt", &actor_opt_}, {"critic_opt", &critic_opt_}, {"alpha_opt", &alpha_opt_}},
          {},
          {}};
}

}  // namespace mtf::agents
