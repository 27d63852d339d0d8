// Offline policy evaluation: what a fusion policy would be worth, estimated from
// logged data only.
//
//  - Fitted Q evaluation (FQE, Le et al. 2019) and its conservative variant, the
//    Conservative-OPEstimator of BatchRL-MTF (Section 4.3.1, Eq. 9 and 10,
//    Algorithm 2 in Appendix A): a Q network regressed on the target policy's
//    Bellman backup, optionally with the CQL regulariser
//    R = E_{s~D, a~pi_e} Q(s, a) - E_{(s,a)~D} Q(s, a), which pushes down the
//    values of actions the data does not support.
//  - NCIS: normalised capped importance sampling of per-request rewards.
//
// Every estimate is deterministic for a given seed and independent of the
// thread count (nn::set_num_threads): draws come from per-state or per-purpose
// streams (Stream::kOffPolicyEvaluation), and the network work uses the fixed
// task splits of agents/nn.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "agents/dataset.h"
#include "core/policy.h"

namespace mtf::agents {

/// Options of fitted_q_evaluation and conservative_ope. Defaults are those of
/// BatchRL-MTF Appendix A where the paper gives them (gamma 0.95, m 512, K 5000,
/// Adam with lr 1e-4, ReLU hidden layers; alpha 0.5e-3 for conservative_ope).
struct FqeOptions {
  double gamma = 0.95;        ///< discount per request, in [0, 1)
  std::int64_t steps = 5000;  ///< K: gradient steps
  int batch = 512;            ///< m: transitions per minibatch (uniform, with replacement)
  int hidden = 256;           ///< width of each hidden layer of the Q network
  int layers = 2;             ///< hidden layers (ReLU); 0 gives a linear Q
  double lr = 1e-4;           ///< Adam learning rate (BatchRL-MTF App. A: 0.1e-3)
  /// Weight w of the soft target update target = w * online + (1 - w) * target
  /// after every step. The backup y = r + gamma Q_target(s', pi_e(s')) uses the
  /// target network; tau = 1 is Algorithm 2 read literally (the backup uses
  /// the current network, Q_k). The default 0.01 (a time constant of 100 steps)
  /// is stabler and still lets K = 5000 steps propagate values over ~50 backups.
  double tau = 0.01;
  /// alpha of BatchRL-MTF Eq. 10: 0 is plain FQE; > 0 adds alpha * R to the loss.
  /// The loss per minibatch is alpha * (mean_i Q(s_i, a~pi_e) - mean_i Q(s_i, a_i))
  /// + 1/2 mean_i (Q(s_i, a_i) - y_i)^2, so alpha is in reward units relative
  /// to the TD error.
  double cql_alpha = 0.0;
  /// Rewards are divided by this constant (> 0) before the fit, so the loss,
  /// the TD error and alpha are in units of it; every estimate is multiplied
  /// back, so values stay in reward units. mean_abs_reward(data) makes alpha
  /// mean the same on worlds whose rewards differ only in scale (BatchRL-MTF's
  /// 0.5e-3 was set for its own rewards). 1 (the default) leaves the bits unchanged.
  double reward_scale = 1.0;
  /// Draws of pi_e per state, made once before training (for the state and the
  /// next state of every transition). Each step uses one of them per column,
  /// picked at random; Eq. 9 averages over all of them. A target whose draws
  /// are all identical (a deterministic policy) is detected and kept with one
  /// draw, so the value costs nothing for deterministic targets. Memory:
  /// 2 * policy_samples * action_dim floats per transition.
  int policy_samples = 8;
  std::uint64_t seed = 1;
  /// Points of the fit's curve (OpeEstimate::curve) at agents::is_curve_step
  /// steps; 0: none. Measuring never changes the estimate.
  int curve_points = 0;
  /// Data-parallel over these ranks, each holding its shard of the data (whole
  /// sessions): the normalisation is the union's (normaliser_over_ranks),
  /// each step every rank samples batch / N rows of its shard (rank 0 from
  /// the stream one process uses, rank r > 0 from its own), each rank's
  /// gradient (TD error and regulariser alike) is weighed by its share of the
  /// rows, N * n_r / n, and the gradients are averaged in rank order, so the
  /// step follows the union's mean; rank r > 0 draws its targets from streams
  /// of its own. The value and the means in the details are over the union's
  /// transitions, the losses reported (curve, details) the ranks' minibatches'
  /// weighed by their shares; every rank returns the same estimate. batch must be a multiple of N. Deterministic for a rank count;
  /// one process's bits only on one rank. Null or one rank: this process's
  /// data alone. Collective.
  const Cluster* ranks = nullptr;
};

/// The draws of pi_e an FQE-type fit makes before it trains (FqeOptions::
/// policy_samples at every transition's s and at its s', from opt.seed; one
/// kept when the target is deterministic). For a stochastic agent they are
/// most of a fit's cost (BCQ decodes 10 candidates per draw), and they depend
/// only on the data, the target, opt.seed and opt.policy_samples: drawn once
/// and handed to FQE and Conservative-OPE of the same target on the same data,
/// each fit gives the bits it would give drawing its own.
struct TargetDraws {
  std::vector<Matrix> at_state, at_next_state;  ///< A x N each, one per draw
  std::uint64_t seed = 0;                       ///< FqeOptions::seed they were drawn with
  int policy_samples = 0;                       ///< FqeOptions::policy_samples asked for
  int transitions = 0;                          ///< N
};
TargetDraws draw_target_actions(const Dataset& data, const Policy& target, const FqeOptions& opt);

/// One point of an estimator's fit: the step's losses and the estimate
/// (OpeEstimate::value) the network would give if the fit stopped there.
struct OpePoint {
  std::int64_t step = 0;
  double td_loss = 0;          ///< 1/2 mean (Q - y)^2 of the step's minibatch (in units of reward_scale)
  double cql_regulariser = 0;  ///< the minibatch's R (0 for plain FQE; in units of reward_scale)
  double value = 0;
};

/// The result of an estimator. `value` is the estimator's headline number (see
/// each function), `per_step` its per-request counterpart, `transitions` the
/// number of transitions that entered it, `method` the estimator's name and
/// `details` what a reader needs to judge it (sizes, losses, weights).
struct OpeEstimate {
  double value = std::numeric_limits<double>::quiet_NaN();
  double per_step = std::numeric_limits<double>::quiet_NaN();
  std::int64_t transitions = 0;
  std::string method;
  nlohmann::json details;
  std::vector<OpePoint> curve;  ///< FqeOptions::curve_points > 0; empty for NCIS
};

/// Fitted Q evaluation of `target` on `data` (BatchRL-MTF Algorithm 2 with alpha =
/// opt.cql_alpha; plain FQE when it is 0).
///
/// Training: a Q network Q(normalised s, a) (input state_dim + action_dim, the
/// data's state normalisation) takes opt.steps Adam steps on minibatches of
/// opt.batch transitions, minimising 1/2 mean (Q(s, a) - y)^2 with
/// y = r + gamma * (1 - done) * Q_target(s', a'), a' one of the precomputed
/// draws of pi_e(s'), plus the CQL term when cql_alpha > 0.
///
/// Value (Eq. 9, "long-term user satisfaction per session"): the mean over ALL
/// session-initial transitions of the dataset (Dataset::initial_indices, i.e.
/// step == 0) of the mean over the draws a ~ pi_e(s0) of Q(s0, a): the
/// discounted return of a session under pi_e, in reward units. The paper draws
/// n = 5000 initial states at random; their mean estimates the same quantity.
/// per_step = (1 - gamma) * value: the constant per-request reward with the
/// same discounted value over an infinite horizon (a normalisation, not a
/// reward estimate; sessions that end earn less than this suggests); NaN
/// when the dataset discounts by elapsed time (no per-request gamma).
/// details: initial_states, policy_samples (after the deterministic collapse),
/// target_deterministic, final td_loss and cql_regulariser (means over the last
/// 100 steps), q_data_mean (mean Q over the data's (s, a)), q_policy_mean
/// (mean over the data's states of Q(s, pi_e(s))), the options.
///
/// Cost: each step is one forward pass of the target network and one forward
/// and backward pass of the Q network over m columns (the conservative variant
/// adds a second forward and backward pass): for the defaults (K 5000, m 512,
/// 256-256, 16 state features, 5 actions) about 1.5 TFLOP, measured 48 s on one
/// busy core (97 s with the regulariser). Drawing pi_e costs 2 calls per
/// transition and draw (Agents are asked in batches through act_batch).
///
/// Throws std::invalid_argument naming the option or the mismatch (dimensions,
/// options out of range, no session-initial transition), and TrainingDiverged
/// (agent "fqe") with the step and loss when a loss becomes non-finite.
/// `draws`, when given, are draw_target_actions(data, target, opt) made
/// earlier (std::invalid_argument when their seed, policy_samples or size do not
/// match opt and data).
OpeEstimate fitted_q_evaluation(const Dataset& data, const Policy& target, const FqeOptions& opt,
                                const TargetDraws* draws = nullptr);

/// The mean |reward| of the dataset's transitions (the rewards it learns
/// with), or 1 when that is 0: FqeOptions::reward_scale for a scale-free alpha.
/// With ranks: over the union of their shards (sums added in rank order). Collective.
double mean_abs_reward(const Dataset& data, const Cluster* ranks = nullptr);

/// alpha of the Conservative-OPEstimator in BatchRL-MTF Appendix A.
inline constexpr double kPaperConservativeAlpha = 0.5e-3;

/// The Conservative-OPEstimator of BatchRL-MTF: fitted_q_evaluation with the CQL
/// regulariser weighted by opt.cql_alpha, as given (the paper's value is
/// kPaperConservativeAlpha; 0 gives plain FQE's estimate, bit for bit, under
/// this method's name). opt.tau = 1 is Algorithm 2 read literally: the backup
/// uses the previous iterate Q_k.
/// method is "conservative_ope".
///
/// What to expect: the regulariser (the paper's, with pi_e in place of CQL's
/// logsumexp) is linear in Q(s, pi_e(s)), so where the data hold no action near
/// pi_e(s) nothing stops it lowering Q there, and Adam lowers it at a rate set
/// by lr whatever alpha is. For a target that leaves the data the value is
/// therefore strongly negative and keeps falling with `steps` (measured on a
/// toy problem: FQE 1.8, conservative -4000 after 2000 steps), which matches
/// the negative values the paper's Table 1 gives TD3 and DDPG. For a target
/// inside the data (the behaviour policy, or a deterministic rule within its
/// range) the value stays within ~1e-4 of FQE's at alpha 0.5e-3. Read it as
/// a ranking that punishes leaving the data, not as a return estimate then.
OpeEstimate conservative_ope(const Dataset& data, const Policy& target, const FqeOptions& opt,
                             const TargetDraws* draws = nullptr);

struct NcisOptions {
  double cap = 10.0;       ///< largest importance weight, > 0 (infinity: no cap)
  double bandwidth = 0.1;  ///< std of the Gaussian kernel around pi_e(s), action units, > 0
  std::uint64_t seed = 1;  ///< stream of the target's draws
  /// Over these ranks' shards: the weights' sums, counts and maximum are the
  /// union's (summed in rank order), the same estimate on every rank. Collective.
  const Cluster* ranks = nullptr;
};

/// Normalised capped importance sampling (Swaminathan & Joachims 2015) of the
/// per-request reward of `target`: w_j = min(pi_e(a_j|s_j) / mu(a_j|s_j), cap),
/// value = per_step = sum_j w_j r_j / sum_j w_j over the transitions with a
/// recorded behaviour log density mu (the others are skipped and counted in
/// details.skipped). pi_e(a|s) is the Gaussian kernel N(a; pi_e(s), bandwidth^2 I)
/// around one draw of pi_e(s) (from a stream derived from opt.seed and the
/// transition index): the standard smoothing for deterministic targets, whose
/// density is a point mass; for a stochastic target it is a one-draw kernel
/// estimate of its density smoothed by the kernel.
/// details: skipped, capped (weights that hit the cap), ess (Kish effective
/// sample size (sum w)^2 / sum w^2), sum_weights, max_weight, cap, bandwidth.
/// With no usable transition, or all weights 0, value is NaN (not an
/// exception: the data simply carries no information about the target).
/// Throws std::invalid_argument for a dimension mismatch or options out of range.
OpeEstimate ncis(const Dataset& data, const Policy& target, const NcisOptions& opt);

/// The NCIS arithmetic on given log densities (natural log), one per
/// transition: rewards r_j, target log pi_e(a_j|s_j), behaviour log mu(a_j|s_j).
/// Entries with a NaN log density are skipped; cap as in NcisOptions. This is
/// what ncis() calls after computing the target's kernel densities; it is
/// public so that targets with known densities can be evaluated exactly.
/// Throws std::invalid_argument when the spans differ in length or cap <= 0.
OpeEstimate ncis_from_log_densities(std::span<const double> rewards,
                                    std::span<const double> target_log_density,
                                    std::span<const double> behaviour_log_density, double cap,
                                    const Cluster* ranks = nullptr);

}  // namespace mtf::agents
