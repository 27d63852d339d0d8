// Exploration policies with recorded densities (see exploration.h).
#include "sim/exploration.h"

#include <algorithm>
#include <boost/random/normal_distribution.hpp>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>

namespace mtf {
namespace {

/// Standard normal cdf.
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

void check_sigma(double sigma, const char* where) {
  if (!(sigma > 0) || !std::isfinite(sigma))
    throw std::invalid_argument(std::string(where) + ": sigma must be a finite number > 0, got " +
                                std::to_string(sigma));
}

void check_bound(double bound, const char* where) {
  if (!(bound > 0 && bound <= 2))
    throw std::invalid_argument(std::string(where) +
                                ": bound must be in (0, 2] (a half-width in action units), got " +
                                std::to_string(bound));
}

void check_base(const PolicyPtr& base, const char* where) {
  if (!base)
    throw std::invalid_argument(std::string(where) +
                                ": base policy is null (pass the policy giving mu(s), e.g. "
                                "BaselinePolicy)");
}

/// One clipped Gaussian coordinate; an unclipped value never rounds to a face.
float clipped_gaussian(float mu, double sigma, double z) {
  const double x = static_cast<double>(mu) + sigma * z;
  if (x <= -1.0) return -1.0f;
  if (x >= 1.0) return 1.0f;
  const float a = static_cast<float>(x);
  if (a >= 1.0f) return std::nextafter(1.0f, 0.0f);
  if (a <= -1.0f) return std::nextafter(-1.0f, 0.0f);
  return a;
}

/// Log density of one coordinate under the mixed measure of GaussianNoisePolicy.
double clipped_gaussian_log_density_1d(float mu, float a, double sigma) {
  const double m = mu;
  if (a <= -1.0f) return std::log(normal_cdf((-1.0 - m) / sigma));
  if (a >= 1.0f) return std::log(normal_cdf((m - 1.0) / sigma));
  const double z = (static_cast<double>(a) - m) / sigma;
  return -0.5 * z * z - std::log(sigma) - 0.5 * std::log(2.0 * std::numbers::pi);
}

struct Interval {
  float lo, hi;
};

/// Seed 000 Formula 3's bounds for one coordinate, clipped to the action box.
Interval bounded_interval(float mu, double bound) {
  const double m = mu;
  return {static_cast<float>(std::max(m - bound, -1.0)),
          static_cast<float>(std::min(m + bound, 1.0))};
}

/// Uniform on [lo, hi] of the float bounds; hi - lo is exact in double.
float uniform_in(Interval iv, Rng& rng) {
  const double lo = iv.lo, width = static_cast<double>(iv.hi) - lo;
  return std::clamp(static_cast<float>(lo + width * rng.uniform01d()), iv.lo, iv.hi);
}

void copy_baseline(std::span<const float> mu, ActionInfo* info) {
  if (info == nullptr || info->baseline.size() != mu.size()) return;
  std::copy(mu.begin(), mu.end(), info->baseline.begin());
  info->has_baseline = true;
}

/// The batched form of "base action, then noise" shared by the wrappers: the
/// base policy's batch first (its draws from rngs[i] come before row i's noise,
/// as in act(), and rows draw from distinct streams), then perturb(row i,
/// rngs[i], infos[i]) in row order. Rows that share one stream would see the
/// draws in another order than act() row by row: they go row by row.
template <class Perturb>
void perturb_batch(const Policy& self, const Policy& base, std::span<const float> states,
                   std::span<float> actions, std::span<Rng* const> rngs, std::span<ActionInfo* const> infos,
                   Perturb&& perturb) {
  const std::size_t n = rngs.size();
  if (n == 0) return;
  if (n > 1 && std::all_of(rngs.begin(), rngs.end(), [&](const Rng* r) { return r == rngs[0]; }))
    return self.Policy::act_batch(states, actions, rngs, infos);
  base.act_batch(states, actions, rngs, {});  // actions hold mu(s) until perturbed
  const std::size_t d = actions.size() / n;
  for (std::size_t i = 0; i < n; ++i)
    perturb(actions.subspan(i * d, d), *rngs[i], infos.empty() ? nullptr : infos[i]);
}

void check_near_args(std::span<const float> mu, double sigma, double bound, double radius,
                     const char* where) {
  check_sigma(sigma, where);
  check_bound(bound, where);
  if (!(radius >= 0) || !std::isfinite(radius))
    throw std::invalid_argument(std::string(where) + ": radius must be a finite number >= 0, got " +
                                std::to_string(radius));
  for (std::size_t i = 0; i < mu.size(); ++i) {
    if (!(mu[i] >= -1.0f && mu[i] <= 1.0f))
      throw std::invalid_argument(std::string(where) + ": mu[" + std::to_string(i) +
                                  "] must be in [-1, 1], got " + std::to_string(mu[i]));
  }
}

}  // namespace

// --- GaussianNoisePolicy

GaussianNoisePolicy::GaussianNoisePolicy(PolicyPtr base, double sigma)
    : base_(std::move(base)), sigma_(sigma) {
  check_base(base_, "GaussianNoisePolicy");
  check_sigma(sigma, "GaussianNoisePolicy");
}

void GaussianNoisePolicy::act(std::span<const float> state, std::span<float> action, Rng& rng,
                              ActionInfo* info) const {
  base_->act(state, action, rng, nullptr);  // action holds mu(s) until overwritten below
  perturb(action, rng, info);
}

void GaussianNoisePolicy::act_batch(std::span<const float> states, std::span<float> actions,
                                    std::span<Rng* const> rngs, std::span<ActionInfo* const> infos) const {
  perturb_batch(*this, *base_, states, actions, rngs, infos,
                [this](std::span<float> a, Rng& rng, ActionInfo* info) { perturb(a, rng, info); });
}

void GaussianNoisePolicy::perturb(std::span<float> action, Rng& rng, ActionInfo* info) const {
  copy_baseline(action, info);
  boost::random::normal_distribution<double> normal(0.0, 1.0);
  double log_density = 0;
  for (float& a : action) {
    const float mu = a;
    a = clipped_gaussian(mu, sigma_, normal(rng));
    log_density += clipped_gaussian_log_density_1d(mu, a, sigma_);
  }
  if (info != nullptr) {
    info->has_bounds = false;
    info->log_density = log_density;
  }
}

// --- UniformRandomPolicy

UniformRandomPolicy::UniformRandomPolicy(int d, PolicyPtr base) : d_(d), base_(std::move(base)) {
  if (d < 1)
    throw std::invalid_argument("UniformRandomPolicy: d must be >= 1, got " + std::to_string(d));
  if (base_ && base_->action_dim() != d)
    throw std::invalid_argument("UniformRandomPolicy: base policy has dimension " +
                                std::to_string(base_->action_dim()) +
                                ", expected d = " + std::to_string(d) + " (or pass a null base)");
}

void UniformRandomPolicy::act(std::span<const float> state, std::span<float> action, Rng& rng,
                              ActionInfo* info) const {
  assert(action.size() == static_cast<std::size_t>(d_));
  // The base is called even without info, so the rng is used the same either way.
  if (base_) base_->act(state, action, rng, nullptr);
  perturb(action, rng, info);
}

void UniformRandomPolicy::act_batch(std::span<const float> states, std::span<float> actions,
                                    std::span<Rng* const> rngs, std::span<ActionInfo* const> infos) const {
  if (!base_) return Policy::act_batch(states, actions, rngs, infos);
  perturb_batch(*this, *base_, states, actions, rngs, infos,
                [this](std::span<float> a, Rng& rng, ActionInfo* info) { perturb(a, rng, info); });
}

void UniformRandomPolicy::perturb(std::span<float> action, Rng& rng, ActionInfo* info) const {
  if (base_) copy_baseline(action, info);
  for (float& a : action) a = uniform_in({-1.0f, 1.0f}, rng);
  if (info != nullptr) {
    info->has_bounds = info->lower.size() == action.size() && info->upper.size() == action.size();
    if (info->has_bounds) {
      std::fill(info->lower.begin(), info->lower.end(), -1.0f);
      std::fill(info->upper.begin(), info->upper.end(), 1.0f);
    }
    info->log_density = -d_ * std::numbers::ln2;
  }
}

// --- BoundedUniformPolicy

BoundedUniformPolicy::BoundedUniformPolicy(PolicyPtr base, double bound) : base_(std::move(base)) {
  check_base(base_, "BoundedUniformPolicy");
  check_bound(bound, "BoundedUniformPolicy");
  bounds_.assign(static_cast<std::size_t>(base_->action_dim()), bound);
}

BoundedUniformPolicy::BoundedUniformPolicy(PolicyPtr base, std::vector<double> bounds)
    : base_(std::move(base)), bounds_(std::move(bounds)) {
  check_base(base_, "BoundedUniformPolicy");
  if (bounds_.size() != static_cast<std::size_t>(base_->action_dim()))
    throw std::invalid_argument("BoundedUniformPolicy: bounds has " +
                                std::to_string(bounds_.size()) +
                                " entries, expected one per action dimension (" +
                                std::to_string(base_->action_dim()) + ")");
  for (double b : bounds_) check_bound(b, "BoundedUniformPolicy");
}

void BoundedUniformPolicy::act(std::span<const float> state, std::span<float> action, Rng& rng,
                               ActionInfo* info) const {
  base_->act(state, action, rng, nullptr);
  perturb(action, rng, info);
}

void BoundedUniformPolicy::act_batch(std::span<const float> states, std::span<float> actions,
                                     std::span<Rng* const> rngs, std::span<ActionInfo* const> infos) const {
  perturb_batch(*this, *base_, states, actions, rngs, infos,
                [this](std::span<float> a, Rng& rng, ActionInfo* info) { perturb(a, rng, info); });
}

void BoundedUniformPolicy::perturb(std::span<float> action, Rng& rng, ActionInfo* info) const {
  copy_baseline(action, info);
  const bool record =
      info != nullptr && info->lower.size() == action.size() && info->upper.size() == action.size();
  double log_density = 0;
  for (std::size_t i = 0; i < action.size(); ++i) {
    assert(action[i] >= -1.0f && action[i] <= 1.0f);
    const Interval iv = bounded_interval(action[i], bounds_[i]);
    action[i] = uniform_in(iv, rng);
    log_density -= std::log(static_cast<double>(iv.hi) - static_cast<double>(iv.lo));
    if (record) {
      info->lower[i] = iv.lo;
      info->upper[i] = iv.hi;
    }
  }
  if (info != nullptr) {
    info->has_bounds = record;
    info->log_density = log_density;
  }
}

// --- Densities

double clipped_gaussian_log_density(std::span<const float> mu, std::span<const float> a,
                                    double sigma) {
  assert(mu.size() == a.size());
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    s += clipped_gaussian_log_density_1d(mu[i], a[i], sigma);
  return s;
}

double box_uniform_log_density(std::span<const float> lower, std::span<const float> upper) {
  assert(lower.size() == upper.size());
  double s = 0;
  for (std::size_t i = 0; i < lower.size(); ++i)
    s -= std::log(static_cast<double>(upper[i]) - static_cast<double>(lower[i]));
  return s;
}

// --- Near-baseline density (IntegratedRL-MTF section 4.5.2)

NearBaselineDensity near_baseline_density(std::span<const float> mu, double sigma, double bound,
                                          double radius, std::int64_t n, std::uint64_t seed) {
  check_near_args(mu, sigma, bound, radius, "near_baseline_density");
  if (n < 1)
    throw std::invalid_argument("near_baseline_density: n must be >= 1, got " + std::to_string(n));
  Rng rng(seed, Stream::kExploration);
  boost::random::normal_distribution<double> normal(0.0, 1.0);
  const double r = radius + 1e-6;  // float rounding of the uniform's edges (see header)
  std::vector<Interval> iv(mu.size());
  for (std::size_t i = 0; i < mu.size(); ++i) iv[i] = bounded_interval(mu[i], bound);
  std::int64_t g_in = 0, u_in = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    bool g_ok = true, u_ok = true;
    for (std::size_t i = 0; i < mu.size(); ++i) {
      // Draw every coordinate even after a miss: the stream stays aligned per sample.
      const float g = clipped_gaussian(mu[i], sigma, normal(rng));
      const float u = uniform_in(iv[i], rng);
      g_ok = g_ok && std::fabs(static_cast<double>(g) - mu[i]) <= r;
      u_ok = u_ok && std::fabs(static_cast<double>(u) - mu[i]) <= r;
    }
    g_in += g_ok;
    u_in += u_ok;
  }
  NearBaselineDensity out;
  out.gaussian_share = static_cast<double>(g_in) / static_cast<double>(n);
  out.uniform_share = static_cast<double>(u_in) / static_cast<double>(n);
  out.ratio =
      g_in == 0 ? std::numeric_limits<double>::infinity() : out.uniform_share / out.gaussian_share;
  return out;
}

NearBaselineDensity near_baseline_density_analytic(std::span<const float> mu, double sigma,
                                                   double bound, double radius) {
  check_near_args(mu, sigma, bound, radius, "near_baseline_density_analytic");
  double g = 1, u = 1;
  for (float mf : mu) {
    const double m = mf, lo = m - radius, hi = m + radius;
    // A clipped coordinate sits on the face, inside the box when the box reaches it.
    const double p_hi = hi >= 1.0 ? 1.0 : normal_cdf((hi - m) / sigma);
    const double p_lo = lo <= -1.0 ? 0.0 : normal_cdf((lo - m) / sigma);
    g *= p_hi - p_lo;
    const Interval iv = bounded_interval(mf, bound);
    const double overlap = std::min<double>(iv.hi, hi) - std::max<double>(iv.lo, lo);
    u *= std::max(overlap, 0.0) / (static_cast<double>(iv.hi) - iv.lo);
  }
  return {g, u, g == 0 ? std::numeric_limits<double>::infinity() : u / g};
}

}  // namespace mtf
