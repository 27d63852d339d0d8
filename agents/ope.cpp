// Offline policy evaluation: FQE, the Conservative-OPEstimator of BatchRL-MTF and
// NCIS (see ope.h).
#include "agents/ope.h"

#include <cmath>
#include <deque>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "agents/agent.h"
#include "agents/curves.h"
#include "agents/nn/adam.h"
#include "agents/nn/heads.h"
#include "agents/nn/mlp.h"

namespace mtf::agents {

namespace {

// Sub-purposes of Stream::kOffPolicyEvaluation (first index of derive_seed).
enum Purpose : std::uint64_t {
  kInit = 1,
  kBatch = 2,
  kDrawChoice = 3,
  kDrawsAtState = 4,
  kDrawsAtNextState = 5,
  kNcisDraws = 6,
  kRankDraws = 7,  ///< data-parallel: rank r's seed for its draws (r > 0)
};

// States per task when drawing target actions or evaluating Q over the data.
constexpr int kChunk = 512;

int chunks(Eigen::Index n) { return static_cast<int>((n + kChunk - 1) / kChunk); }

[[noreturn]] void bad_option(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

void check_dims(const std::string& where, const Dataset& data, const Policy& target) {
  if (target.action_dim() != data.action_dim())
    bad_option(where, "target policy \"" + target.name() + "\" has action_dim " +
                          std::to_string(target.action_dim()) + " but the dataset's actions have " +
                          std::to_string(data.action_dim()) +
                          " dimensions; evaluate it on data of its own scenario");
  if (const auto* agent = dynamic_cast<const Agent*>(&target);
      agent && agent->state_dim() != data.state_dim())
    bad_option(where, "target agent \"" + target.name() + "\" expects state_dim " +
                          std::to_string(agent->state_dim()) + " but the dataset's states have " +
                          std::to_string(data.state_dim()));
}

// Draw `draw` of pi_e for every column of `states`, into out (A x N). An Agent is
// asked in fixed chunks through act_batch (one stream per chunk and draw); any
// other Policy state by state through act (one stream per state and draw). Both
// splits are fixed, so the draws do not depend on the thread count.
void draw_actions(const Policy& target, const Matrix& states, std::uint64_t seed,
                  std::uint64_t purpose, int draw, Matrix& out) {
  const Eigen::Index S = states.rows(), N = states.cols();
  const int A = target.action_dim();
  out.resize(A, N);
  const auto* agent = dynamic_cast<const Agent*>(&target);
  nn::parallel_for(chunks(N), [&](int c) {
    const Eigen::Index begin = Eigen::Index(c) * kChunk,
                       n = std::min<Eigen::Index>(kChunk, N - begin);
    if (agent) {
      Rng rng(mix64(derive_seed(seed, Stream::kOffPolicyEvaluation, purpose, std::uint64_t(c)) +
                    std::uint64_t(draw)));
      Matrix a;
      agent->act_batch(states.middleCols(begin, n), a, rng);
      out.middleCols(begin, n) = a;
      return;
    }
    for (Eigen::Index j = begin; j < begin + n; ++j) {
      Rng rng(mix64(derive_seed(seed, Stream::kOffPolicyEvaluation, purpose, std::uint64_t(j)) +
                    std::uint64_t(draw)));
      target.act(std::span<const float>(states.col(j).data(), static_cast<std::size_t>(S)),
                 std::span<float>(out.col(j).data(), static_cast<std::size_t>(A)), rng, nullptr);
    }
  });
}

// J draws of pi_e at every column of states: draws[k] is A x N.
std::vector<Matrix> draw_many(const Policy& target, const Matrix& states, std::uint64_t seed,
                              std::uint64_t purpose, int J) {
  std::vector<Matrix> draws(static_cast<std::size_t>(J));
  for (int k = 0; k < J; ++k)
    draw_actions(target, states, seed, purpose, k, draws[static_cast<std::size_t>(k)]);
  return draws;
}

// Mean over the listed columns (all when index is empty) and over the action
// sets of Q(norm(s_j), a_j). Chunk sums in double, added in chunk order.
double mean_q(const nn::Mlp& net, const StateNormaliser& norm, const Matrix& states,
              const std::vector<const Matrix*>& action_sets, const std::vector<int>& index) {
  const Eigen::Index N = index.empty() ? states.cols() : Eigen::Index(index.size());
  const Eigen::Index S = states.rows();
  std::vector<double> sums(static_cast<std::size_t>(chunks(N)), 0.0);
  nn::parallel_for(chunks(N), [&](int c) {
    const Eigen::Index begin = Eigen::Index(c) * kChunk,
                       n = std::min<Eigen::Index>(kChunk, N - begin);
    Matrix s(S, n), in, q;
    const auto col = [&](Eigen::Index i) {
      return index.empty() ? i : Eigen::Index(index[std::size_t(i)]);
    };
    for (Eigen::Index i = 0; i < n; ++i) s.col(i) = states.col(col(begin + i));
    norm.apply(s, s);
    double sum = 0;
    for (const Matrix* actions : action_sets) {
      Matrix a(actions->rows(), n);
      for (Eigen::Index i = 0; i < n; ++i) a.col(i) = actions->col(col(begin + i));
      nn::vstack(s, a, in);
      net.infer(in, q);
      sum += q.cast<double>().sum();
    }
    sums[std::size_t(c)] = sum;
  });
  double total = 0;
  for (double s : sums) total += s;
  return total / (double(N) * double(action_sets.size()));
}

nlohmann::json options_json(const FqeOptions& o) {
  return {{"gamma", o.gamma},   {"steps", o.steps},         {"batch", o.batch},
          {"hidden", o.hidden}, {"layers", o.layers},       {"lr", o.lr},
          {"tau", o.tau},       {"cql_alpha", o.cql_alpha}, {"policy_samples", o.policy_samples},
          {"seed", o.seed},     {"reward_scale", o.reward_scale}};
}

TargetDraws draw_impl(const Dataset& data, const Policy& target, const FqeOptions& opt) {
  const Matrix states = data.states(), next_states = data.next_states();
  // Over ranks, each rank's draws from streams of its own (the streams are
  // keyed by column, and rank r's columns are other rows than rank 0's).
  const std::uint64_t seed = opt.ranks && opt.ranks->rank() > 0
                                 ? derive_seed(opt.seed, Stream::kOffPolicyEvaluation, kRankDraws,
                                               static_cast<std::uint64_t>(opt.ranks->rank()))
                                 : opt.seed;
  // Two first: if they agree everywhere the target is treated as
  // deterministic and one draw is kept.
  const int J_max = opt.policy_samples;
  TargetDraws d;
  d.seed = opt.seed;
  d.policy_samples = J_max;
  d.transitions = data.size();
  d.at_state = draw_many(target, states, seed, kDrawsAtState, std::min(J_max, 2));
  d.at_next_state = draw_many(target, next_states, seed, kDrawsAtNextState, std::min(J_max, 2));
  const bool deterministic =
      J_max == 1 || (d.at_state[0] == d.at_state[1] && d.at_next_state[0] == d.at_next_state[1]);
  if (deterministic) {
    d.at_state.resize(1);
    d.at_next_state.resize(1);
  } else {
    for (int k = 2; k < J_max; ++k) {
      d.at_state.emplace_back();
      draw_actions(target, states, seed, kDrawsAtState, k, d.at_state.back());
      d.at_next_state.emplace_back();
      draw_actions(target, next_states, seed, kDrawsAtNextState, k, d.at_next_state.back());
    }
  }
  return d;
}

OpeEstimate fqe_impl(const Dataset& data, const Policy& target, const FqeOptions& opt,
                     const std::string& method, const TargetDraws* given) {
  const std::string where = method;
  check_dims(where, data, target);
  if (!(opt.gamma >= 0.0 && opt.gamma < 1.0))
    bad_option(where, "options.gamma must be in [0, 1), got " + std::to_string(opt.gamma));
  if (opt.steps < 0)
    bad_option(where, "options.steps must be >= 0, got " + std::to_string(opt.steps));
  if (opt.batch < 1)
    bad_option(where, "options.batch must be >= 1, got " + std::to_string(opt.batch));
  if (opt.hidden < 1 || opt.layers < 0)
    bad_option(where, "options.hidden must be >= 1 and options.layers >= 0, got " +
                          std::to_string(opt.hidden) + " and " + std::to_string(opt.layers));
  if (!(opt.lr > 0.0 && opt.lr <= 1.0))
    bad_option(where, "options.lr must be in (0, 1], got " + std::to_string(opt.lr));
  if (!(opt.reward_scale > 0.0 && std::isfinite(opt.reward_scale)))
    bad_option(where, "options.reward_scale must be a finite number > 0, got " + std::to_string(opt.reward_scale));
  if (!(opt.tau > 0.0 && opt.tau <= 1.0))
    bad_option(where, "options.tau must be in (0, 1], got " + std::to_string(opt.tau));
  if (!(opt.cql_alpha >= 0.0 && std::isfinite(opt.cql_alpha)))
    bad_option(where, "options.cql_alpha must be a finite number >= 0, got " +
                          std::to_string(opt.cql_alpha));
  if (opt.policy_samples < 1)
    bad_option(where,
               "options.policy_samples must be >= 1, got " + std::to_string(opt.policy_samples));
  const Cluster* ranks = opt.ranks && opt.ranks->size() > 1 ? opt.ranks : nullptr;
  const std::vector<int>& initial = data.initial_indices();
  const int S = data.state_dim(), A = data.action_dim(), N = data.size();
  // Over ranks, what every rank holds decides for all of them together (a
  // rank that stopped alone would leave the others waiting).
  const std::vector<double> held = sum_over_ranks(ranks, {static_cast<double>(N), static_cast<double>(initial.size())});
  if (held[1] == 0)
    bad_option(
        where,
        "the dataset has no session-initial transition (step 0), so Eq. 9's value per session is "
        "undefined; record whole sessions");
  if (ranks) {
    if (opt.batch % ranks->size() != 0)
      bad_option(where, "options.batch " + std::to_string(opt.batch) + " is not a multiple of the " +
                            std::to_string(ranks->size()) + " data-parallel ranks; choose a batch size that is");
    const std::vector<std::string> sizes = ranks->all_gather(std::to_string(N));
    for (std::size_t r = 0; r < sizes.size(); ++r)
      if (sizes[r] == "0")
        bad_option(where, "MPI rank " + std::to_string(r) + " holds no transitions of the dataset; use fewer ranks");
  }
  const Matrix states = data.states(), data_actions = data.actions();

  // Draws of pi_e: given, or drawn here.
  const auto fits = [&](const TargetDraws& d) {
    if (d.seed != opt.seed || d.policy_samples != opt.policy_samples || d.transitions != N ||
        d.at_state.size() != d.at_next_state.size() ||
        (d.at_state.size() != 1 && d.at_state.size() != static_cast<std::size_t>(opt.policy_samples)))
      return false;
    for (const auto* set : {&d.at_state, &d.at_next_state})
      for (const Matrix& m : *set)
        if (m.rows() != A || m.cols() != N) return false;
    return true;
  };
  if (given && !fits(*given))
    bad_option(where, "the target's draws were made for another fit (seed " + std::to_string(given->seed) + ", " +
                          std::to_string(given->policy_samples) + " samples, " +
                          std::to_string(given->transitions) + " transitions; this fit: seed " +
                          std::to_string(opt.seed) + ", " + std::to_string(opt.policy_samples) + ", " +
                          std::to_string(N) + "); draw them with draw_target_actions(data, target, opt)");
  TargetDraws own;
  if (!given) own = draw_impl(data, target, opt);
  const TargetDraws& drawn = given ? *given : own;
  const std::vector<Matrix>& at_s = drawn.at_state;
  const std::vector<Matrix>& at_next = drawn.at_next_state;
  const bool deterministic = at_s.size() == 1;
  const int J = static_cast<int>(at_s.size());

  Rng init_rng(opt.seed, Stream::kOffPolicyEvaluation, kInit);
  Rng batch_rng(opt.seed, Stream::kOffPolicyEvaluation, kBatch);
  Rng choice_rng(opt.seed, Stream::kOffPolicyEvaluation, kDrawChoice);
  nn::MlpSpec spec;
  spec.input = S + A;
  spec.hidden.assign(static_cast<std::size_t>(opt.layers), opt.hidden);
  spec.output = 1;
  spec.activation = nn::Activation::kRelu;
  if (ranks && ranks->rank() > 0) {  // each rank its own minibatches; every rank the same initial network
    const auto r = static_cast<std::uint64_t>(ranks->rank());
    batch_rng = Rng(opt.seed, Stream::kOffPolicyEvaluation, kBatch, r);
    choice_rng = Rng(opt.seed, Stream::kOffPolicyEvaluation, kDrawChoice, r);
  }
  nn::Mlp q_net(spec, init_rng);
  nn::Mlp q_target = q_net;
  nn::Adam adam(q_net.params(), {static_cast<float>(opt.lr)});
  adam.average_over(ranks);

  const StateNormaliser norm = normaliser_over_ranks(data, ranks);
  // The mean of Q over the listed columns and action sets, over every rank's rows.
  const auto mean_q_all = [&](const std::vector<const Matrix*>& sets, const std::vector<int>& index, bool all_rows) {
    if (!ranks) return mean_q(q_net, norm, states, sets, index);
    const double n = static_cast<double>(all_rows ? N : static_cast<int>(index.size())) * double(sets.size());
    const double here = n > 0 ? mean_q(q_net, norm, states, sets, index) * n : 0.0;
    const std::vector<double> sums = sum_over_ranks(ranks, {here, n});
    return sums[0] / sums[1];
  };
  const int m = ranks ? opt.batch / ranks->size() : opt.batch;
  // Over ranks, each rank's mean gradient weighs by its share of the rows
  // (N_ranks * n_r / n), so that the ranks' average is the union's mean and
  // a smaller shard's rows count no more than a larger one's.
  const float shard_weight = ranks ? static_cast<float>(ranks->size() * static_cast<double>(N) / held[0]) : 1.0f;
  const float inv_m = 1.0f / static_cast<float>(m);
  const float gamma = static_cast<float>(opt.gamma), alpha = static_cast<float>(opt.cql_alpha);
  const float inv_scale = static_cast<float>(1.0 / opt.reward_scale);
  const double scale = opt.reward_scale;  // estimates back in reward units
  const bool conservative = opt.cql_alpha > 0.0;
  std::vector<int> index(static_cast<std::size_t>(m));
  Batch b;
  Matrix a_next(A, m), a_pi(A, m), in_data, in_next, in_pi, dq, dq_pi;
  nn::MlpWorkspace ws_data, ws_next, ws_pi;
  std::deque<std::pair<double, double>> recent;  // (td, regulariser) of the last 100 steps
  std::vector<const Matrix*> pi_sets;
  for (const Matrix& a : at_s) pi_sets.push_back(&a);
  std::vector<OpePoint> curve;
  for (std::int64_t step = 1; step <= opt.steps; ++step) {
    for (int& i : index) i = static_cast<int>(batch_rng.below(static_cast<std::uint32_t>(N)));
    data.gather(index, b);
    norm.apply(b.state, b.state);
    norm.apply(b.next_state, b.next_state);
    for (int i = 0; i < m; ++i) {
      const int j = index[std::size_t(i)];
      const int k_next =
          J > 1 ? static_cast<int>(choice_rng.below(static_cast<std::uint32_t>(J))) : 0;
      a_next.col(i) = at_next[std::size_t(k_next)].col(j);
      if (conservative) {
        const int k = J > 1 ? static_cast<int>(choice_rng.below(static_cast<std::uint32_t>(J))) : 0;
        a_pi.col(i) = at_s[std::size_t(k)].col(j);
      }
    }
    // Backup with the target network: y = r + gamma (1 - done) Q'(s', a').
    nn::vstack(b.next_state, a_next, in_next);
    const Matrix& q_next = q_target.forward(in_next, ws_next);
    const RowVector y =
        b.reward.row(0).array() * inv_scale + continuation(gamma, b).array() * q_next.row(0).array();
    nn::vstack(b.state, b.action, in_data);
    const Matrix& q = q_net.forward(in_data, ws_data);
    dq = q.rowwise() - y;
    const double td = 0.5 * dq.squaredNorm() * inv_m;
    const double q_data = q.cast<double>().mean();
    dq *= inv_m;
    if (ranks) dq *= shard_weight;
    double reg = 0.0;
    if (conservative) {
      // d/dQ of alpha * (mean Q(s, a_pi) - mean Q(s, a_data)).
      dq.array() -= alpha * inv_m * shard_weight;
      nn::vstack(b.state, a_pi, in_pi);
      const Matrix& qp = q_net.forward(in_pi, ws_pi);
      reg = qp.cast<double>().mean() - q_data;
      dq_pi = Matrix::Constant(1, m, alpha * inv_m * shard_weight);
    }
    throw_if_diverged("fqe", step, {{"td", td}, {"cql_regulariser", reg}}, ranks);
    q_net.backward(in_data, dq, ws_data, nn::BackwardOptions{});
    if (conservative) {
      nn::BackwardOptions acc;
      acc.accumulate = true;
      q_net.backward(in_pi, dq_pi, ws_pi, acc);
    }
    adam.step();
    q_target.soft_update_from(q_net, static_cast<float>(opt.tau));
    recent.emplace_back(td, reg);
    if (recent.size() > 100) recent.pop_front();
    if (opt.curve_points > 0 && is_curve_step(step, opt.steps, opt.curve_points)) {
      // Over ranks, the losses are the ranks' own minibatches' weighed by their shares of the rows.
      double td_all = td, reg_all = reg;
      if (ranks) {
        const std::vector<double> sums = sum_over_ranks(ranks, {td * N, reg * N});
        td_all = sums[0] / held[0];
        reg_all = sums[1] / held[0];
      }
      curve.push_back({step, td_all, reg_all, scale * mean_q_all(pi_sets, initial, false)});
    }
  }
  double td_recent = std::numeric_limits<double>::quiet_NaN(), reg_recent = td_recent;
  if (!recent.empty()) {
    td_recent = reg_recent = 0.0;
    for (const auto& [t, r] : recent) {
      td_recent += t;
      reg_recent += r;
    }
    td_recent /= double(recent.size());
    reg_recent /= double(recent.size());
    if (ranks) {  // weighed by the ranks' shares of the rows
      const std::vector<double> sums = sum_over_ranks(ranks, {td_recent * N, reg_recent * N});
      td_recent = sums[0] / held[0];
      reg_recent = sums[1] / held[0];
    }
  }

  OpeEstimate est;
  est.method = method;
  est.value = scale * mean_q_all(pi_sets, initial, false);
  // Per request only when every transition is one step of gamma.
  if (data.discount_unit_seconds() == 0) est.per_step = (1.0 - opt.gamma) * est.value;
  est.transitions = static_cast<std::int64_t>(held[0]);
  est.details = {{"initial_states", static_cast<std::int64_t>(held[1])},
                 {"policy_samples", J},
                 {"target_deterministic", deterministic},
                 {"td_loss", td_recent},
                 {"cql_regulariser", reg_recent},
                 {"q_data_mean", scale * mean_q_all({&data_actions}, {}, true)},
                 {"q_policy_mean", scale * mean_q_all(pi_sets, {}, true)},
                 {"options", options_json(opt)}};
  est.curve = std::move(curve);
  return est;
}

}  // namespace

double mean_abs_reward(const Dataset& data, const Cluster* ranks) {
  const Matrix r = data.rewards();
  double m = 0.0;
  if (!ranks || ranks->size() == 1) {
    m = r.size() > 0 ? r.cast<double>().cwiseAbs().mean() : 0.0;
  } else {
    const std::vector<double> sums = sum_over_ranks(
        ranks, {r.size() > 0 ? r.cast<double>().cwiseAbs().sum() : 0.0, static_cast<double>(r.size())});
    m = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
  }
  return m > 0.0 ? m : 1.0;
}

TargetDraws draw_target_actions(const Dataset& data, const Policy& target, const FqeOptions& opt) {
  check_dims("draw_target_actions", data, target);
  if (opt.policy_samples < 1)
    bad_option("draw_target_actions",
               "options.policy_samples must be >= 1, got " + std::to_string(opt.policy_samples));
  return draw_impl(data, target, opt);
}

OpeEstimate fitted_q_evaluation(const Dataset& data, const Policy& target, const FqeOptions& opt,
                                const TargetDraws* draws) {
  return fqe_impl(data, target, opt, opt.cql_alpha > 0.0 ? "conservative_ope" : "fqe", draws);
}

OpeEstimate conservative_ope(const Dataset& data, const Policy& target, const FqeOptions& opt,
                             const TargetDraws* draws) {
  return fqe_impl(data, target, opt, "conservative_ope", draws);
}

OpeEstimate ncis_from_log_densities(std::span<const double> rewards,
                                    std::span<const double> target_log_density,
                                    std::span<const double> behaviour_log_density, double cap,
                                    const Cluster* ranks) {
  if (rewards.size() != target_log_density.size() || rewards.size() != behaviour_log_density.size())
    throw std::invalid_argument(
        "ncis: rewards, target and behaviour log densities must have one entry per "
        "transition, got " +
        std::to_string(rewards.size()) + ", " + std::to_string(target_log_density.size()) +
        " and " + std::to_string(behaviour_log_density.size()));
  if (!(cap > 0.0))
    throw std::invalid_argument("ncis: options.cap must be > 0 (infinity for no cap), got " +
                                std::to_string(cap));
  double sum_w = 0, sum_wr = 0, sum_w2 = 0, max_w = 0;
  std::int64_t used = 0, skipped = 0, capped = 0;
  for (std::size_t j = 0; j < rewards.size(); ++j) {
    const double lt = target_log_density[j], lb = behaviour_log_density[j];
    if (std::isnan(lt) || std::isnan(lb)) {
      ++skipped;
      continue;
    }
    double w = std::exp(lt - lb);
    if (w >= cap) {
      w = cap;
      ++capped;
    }
    ++used;
    sum_w += w;
    sum_wr += w * rewards[j];
    sum_w2 += w * w;
    max_w = std::max(max_w, w);
  }
  if (ranks && ranks->size() > 1) {  // the union's sums, in rank order
    const std::vector<double> sums = sum_over_ranks(
        ranks, {sum_w, sum_wr, sum_w2, static_cast<double>(used), static_cast<double>(skipped),
                static_cast<double>(capped)});
    sum_w = sums[0];
    sum_wr = sums[1];
    sum_w2 = sums[2];
    used = static_cast<std::int64_t>(sums[3]);
    skipped = static_cast<std::int64_t>(sums[4]);
    capped = static_cast<std::int64_t>(sums[5]);
    max_w = max_over_ranks(ranks, max_w);
  }
  OpeEstimate est;
  est.method = "ncis";
  est.transitions = used;
  if (sum_w > 0) est.value = est.per_step = sum_wr / sum_w;
  est.details = {{"skipped", skipped},
                 {"capped", capped},
                 {"ess", sum_w2 > 0 ? sum_w * sum_w / sum_w2 : 0.0},
                 {"sum_weights", sum_w},
                 {"max_weight", max_w},
                 {"cap", std::isfinite(cap) ? nlohmann::json(cap) : nlohmann::json("inf")}};
  return est;
}

OpeEstimate ncis(const Dataset& data, const Policy& target, const NcisOptions& opt) {
  check_dims("ncis", data, target);
  if (!(opt.bandwidth > 0.0 && std::isfinite(opt.bandwidth)))
    throw std::invalid_argument(
        "ncis: options.bandwidth must be a finite number > 0 (action units), got " +
        std::to_string(opt.bandwidth));
  const int N = data.size(), A = data.action_dim();
  Matrix pi;
  const Matrix actions = data.actions(), data_rewards = data.rewards();
  const std::uint64_t seed = opt.ranks && opt.ranks->rank() > 0
                                 ? derive_seed(opt.seed, Stream::kOffPolicyEvaluation, kRankDraws,
                                               static_cast<std::uint64_t>(opt.ranks->rank()))
                                 : opt.seed;  // each rank's own streams, as for FQE's draws
  draw_actions(target, data.states(), seed, kNcisDraws, 0, pi);
  const double h = opt.bandwidth;
  const double log_norm = -0.5 * A * std::log(2.0 * std::numbers::pi * h * h);
  std::vector<double> rewards(static_cast<std::size_t>(N)), log_target(rewards.size());
  const std::vector<double> log_behaviour = data.log_densities();
  for (int j = 0; j < N; ++j) {
    rewards[std::size_t(j)] = data_rewards(0, j);
    const double d2 = (actions.col(j) - pi.col(j)).cast<double>().squaredNorm();
    log_target[std::size_t(j)] = log_norm - 0.5 * d2 / (h * h);
  }
  OpeEstimate est = ncis_from_log_densities(rewards, log_target, log_behaviour, opt.cap, opt.ranks);
  est.details["bandwidth"] = h;
  return est;
}

}  // namespace mtf::agents
