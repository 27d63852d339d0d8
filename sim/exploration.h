// Exploration (behaviour) policies that record what they did: each wraps a
// deterministic base policy mu(s) (by default the production BaselinePolicy),
// perturbs its action, and fills ActionInfo completely -- the baseline mu_bp(s),
// the exploration bounds where there are any, and the log density of the action
// actually taken -- so offline agents (IntegratedRL-MTF Formulas 4 and 6 use the bounds)
// and estimators (NCIS uses the density) can read them from the dataset.
//
// Three policies from the seed papers:
//  - GaussianNoisePolicy: action noise, a = clip(mu + N(0, sigma^2 I))
//    (IntegratedRL-MTF Dataset 1, sigma 0.2; BatchRL-MTF Eq. 8, sigma 0.1);
//  - UniformRandomPolicy: a ~ U([-1, 1]^d), no prior knowledge (BatchRL-MTF section
//    3.3's random exploration; the paper samples "from a Gaussian distribution",
//    we take the uniform law on the action box, the no-prior choice on a bounded
//    set, whose density is a constant);
//  - BoundedUniformPolicy: a ~ U(lower, upper) with personalised bounds around mu
//    (IntegratedRL-MTF Formula 3, bound 0.15).
// Seed 002's mixed multi-exploration is two scenario groups, one "random" and one
// "gaussian", of equal share.
//
// Densities are with respect to the measure stated at each policy; actions are
// floats, and the recorded density is computed from the float action and the
// float mu as recorded, so a reader of the dataset can recompute it exactly with
// the free functions below.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/policy.h"

namespace mtf {

/// Action noise around a base policy: a_i = clip(mu_i(s) + sigma * z_i, -1, 1),
/// z ~ N(0, I), one normal draw per dimension from the caller's rng.
///
/// Clipping puts a point mass on the faces of [-1, 1]^d, so the law of a has no
/// Lebesgue density. The recorded log_density is the log of the density with
/// respect to the product, over dimensions, of the mixed measure
///   lambda + delta_{-1} + delta_{+1}
/// (Lebesgue measure on (-1, 1) plus unit atoms at the two faces). Per dimension
/// the density is
///   - phi((a_i - mu_i) / sigma) / sigma           if -1 < a_i < 1 (normal pdf),
///   - Phi((-1 - mu_i) / sigma)                    if a_i == -1 (lower tail mass),
///   - Phi((mu_i - 1) / sigma) = 1 - Phi((1 - mu_i) / sigma)  if a_i == +1,
/// and log_density is the sum of the per-dimension logs. Two recorded densities
/// are comparable (a ratio is an importance weight) only for actions with the
/// same clipped coordinates, which holds whenever both are evaluated at the same
/// recorded action.
///
/// A coordinate equals +-1 exactly if and only if it was clipped: an unclipped
/// value that would round to +-1.0f is moved one float inwards (probability of
/// order 1e-8 per draw), so "a_i == +-1" read from the dataset is unambiguous.
///
/// Bounds: has_bounds = false. The Gaussian's support is the whole action box,
/// so the only honest bounds are [-1, 1], which constrain nothing; recording
/// none tells IntegratedRL-MTF not to penalise (agents/integratedrl_mtf.h), the
/// same effect without pretending the data has a personalised support.
class GaussianNoisePolicy final : public Policy {
 public:
  /// `base`: the deterministic policy whose action is mu(s) (not null);
  /// `sigma`: the noise's standard deviation in action units, > 0 and finite.
  /// Throws std::invalid_argument naming the argument otherwise.
  GaussianNoisePolicy(PolicyPtr base, double sigma);
  std::string name() const override { return "gaussian"; }
  int action_dim() const override { return base_->action_dim(); }
  /// Fills action, and info (when not null) with baseline = mu(s),
  /// has_bounds = false and log_density as documented on the class.
  void act(std::span<const float> state, std::span<float> action, Rng& rng,
           ActionInfo* info) const override;
  /// The base policy's act_batch, then each row's noise from rngs[i]: the bits,
  /// draws and ActionInfo of act() row by row (rows have distinct streams).
  void act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                 std::span<ActionInfo* const> infos) const override;
  double sigma() const { return sigma_; }

 private:
  /// Replaces mu(s) in `action` by the noisy action, filling info.
  void perturb(std::span<float> action, Rng& rng, ActionInfo* info) const;

  PolicyPtr base_;
  double sigma_;
};

/// Uniform random exploration: a ~ U([-1, 1]^d), ignoring the state. The base
/// policy only supplies the recorded baseline mu_bp(s), so datasets of mixed
/// exploration know it for every row; base may be null (has_baseline = false).
/// log_density = -d log 2 (Lebesgue density on the box); bounds [-1, 1].
class UniformRandomPolicy final : public Policy {
 public:
  /// `d` >= 1 action dimensions; `base` null or of dimension d. Throws
  /// std::invalid_argument naming the argument otherwise.
  UniformRandomPolicy(int d, PolicyPtr base);
  std::string name() const override { return "random"; }
  int action_dim() const override { return d_; }
  void act(std::span<const float> state, std::span<float> action, Rng& rng,
           ActionInfo* info) const override;
  /// The base policy's act_batch (when there is one), then each row's draws from
  /// rngs[i]: the bits, draws and ActionInfo of act() row by row.
  void act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                 std::span<ActionInfo* const> infos) const override;

 private:
  /// Draws the action over mu(s) (recorded as the baseline), filling info.
  void perturb(std::span<float> action, Rng& rng, ActionInfo* info) const;

  int d_;
  PolicyPtr base_;
};

/// Seed 000 Formula 3: personalised bounds around the base action,
///   lower_i = max(mu_i - b_i, -1),  upper_i = min(mu_i + b_i, 1),
///   a_i ~ U(lower_i, upper_i) independently.
/// The bounds are clipped to the action box, not the action, so there are no
/// point masses: the law has the Lebesgue density prod_i 1 / (upper_i - lower_i)
/// on the recorded box, and log_density = -sum_i log(upper_i - lower_i), with
/// lower/upper the float bounds as recorded (has_bounds = true). Near a face the
/// box is narrower and the density higher (mu = 1, b = 0.15: width 0.15).
class BoundedUniformPolicy final : public Policy {
 public:
  /// One half-width `bound` for every dimension, in (0, 2] (2 covers the whole
  /// box from any mu). Throws std::invalid_argument naming the argument.
  BoundedUniformPolicy(PolicyPtr base, double bound);
  /// One half-width per dimension: `bounds` has base->action_dim() entries, each
  /// in (0, 2]. Throws std::invalid_argument naming the argument.
  BoundedUniformPolicy(PolicyPtr base, std::vector<double> bounds);
  std::string name() const override { return "bounded_uniform"; }
  int action_dim() const override { return base_->action_dim(); }
  /// info (when not null): baseline = mu(s), has_bounds = true, lower/upper as
  /// above, log_density as above. Requires mu in [-1, 1]^d (asserted).
  void act(std::span<const float> state, std::span<float> action, Rng& rng,
           ActionInfo* info) const override;
  /// The base policy's act_batch, then each row's draws from rngs[i]: the bits,
  /// draws and ActionInfo of act() row by row (rows have distinct streams).
  void act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                 std::span<ActionInfo* const> infos) const override;
  double bound(int i) const { return bounds_[static_cast<std::size_t>(i)]; }

 private:
  /// Replaces mu(s) in `action` by a draw within the bounds, filling info.
  void perturb(std::span<float> action, Rng& rng, ActionInfo* info) const;

  PolicyPtr base_;
  std::vector<double> bounds_;
};

/// Log density of GaussianNoisePolicy's action `a` given the base action `mu`
/// (both of size d, a in [-1, 1]^d), with respect to the mixed measure
/// documented on GaussianNoisePolicy. A face whose tail mass underflows gives
/// -infinity.
double clipped_gaussian_log_density(std::span<const float> mu, std::span<const float> a,
                                    double sigma);

/// Log Lebesgue density of a uniform law on the box [lower, upper] (sizes equal,
/// lower < upper per dimension): -sum_i log(upper_i - lower_i).
double box_uniform_log_density(std::span<const float> lower, std::span<const float> upper);

/// Share of samples near the baseline action, for the Gaussian and the bounded
/// uniform exploration with the same mu; ratio = uniform_share / gaussian_share
/// (+infinity when gaussian_share is 0).
struct NearBaselineDensity {
  double gaussian_share, uniform_share, ratio;
};

/// Measures, with n samples of each policy drawn from a stream seeded by `seed`
/// (Stream::kExploration), the share of actions inside the L-infinity box of
/// half-width `radius` around mu: |a_i - mu_i| <= radius for every i. Actions are
/// drawn exactly as GaussianNoisePolicy(sigma) and BoundedUniformPolicy(bound)
/// draw them (clipping included). A tolerance of 1e-6 is added to radius so float
/// rounding of the bounded uniform's edges does not count a sample as outside.
///
/// What this measures, and why (IntegratedRL-MTF section 4.5.2): the paper compares the
/// two policies "under the same requirement for exploration density", the
/// density being the samples per unit volume within the useful region around
/// mu_bp, the box of half-width `bound`. Both policies spread N requests; the
/// bounded uniform puts uniform_share * N of them in the box, the Gaussian
/// gaussian_share * N, so reaching the same density in the box takes `ratio`
/// times more requests with the Gaussian: ratio is the efficiency gain. With
/// radius = bound = 0.15, sigma = 0.2 and an interior mu, gaussian_share per
/// dimension is 2 Phi(0.75) - 1 = 0.547 (about one half), so in d = 10 the ratio
/// is 0.547^-10 = 419 = 2^8.7: the paper's "about 2^10" is this per-dimension
/// factor of about 2 raised to the 10th power. (Comparing peak densities
/// instead, (1 / 0.3) / (1 / (0.2 sqrt(2 pi))) = 1.67 per dimension, gives 2^7.4.)
/// radius = bound is the natural default. Requires n >= 1, sigma > 0,
/// bound in (0, 2], radius >= 0, mu in [-1, 1]^d; throws std::invalid_argument
/// naming the argument otherwise.
NearBaselineDensity near_baseline_density(std::span<const float> mu, double sigma, double bound,
                                          double radius, std::int64_t n, std::uint64_t seed);

/// The exact value that near_baseline_density estimates: the product over
/// dimensions of the per-dimension probabilities, for any mu in [-1, 1]^d
/// (faces included: a clipped Gaussian coordinate at -1 is inside the box when
/// mu_i - radius <= -1, and the bounded uniform's clipped interval is
/// intersected with [mu_i - radius, mu_i + radius]). For an interior mu (mu_i +-
/// max(radius, bound) inside [-1, 1]) each Gaussian factor is
/// 2 Phi(radius / sigma) - 1 and each uniform factor min(radius / bound, 1), up
/// to the float rounding of the bounds (relative 1e-7: the uniform factor uses
/// the float box the policy draws from). Same argument checks as near_baseline_density.
NearBaselineDensity near_baseline_density_analytic(std::span<const float> mu, double sigma,
                                                   double bound, double radius);

}  // namespace mtf
