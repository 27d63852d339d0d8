// See curves.h.
#include "agents/curves.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace mtf::agents {

CurveProbe::CurveProbe(const Dataset& data, int size, double gamma) {
  const int n = std::min(std::max(size, 1), data.size());
  // Evenly spaced over the dataset: transition floor(k * N / n).
  std::vector<int> index(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k)
    index[static_cast<std::size_t>(k)] = static_cast<int>(static_cast<std::int64_t>(k) * data.size() / n);
  Batch b;
  data.gather(index, b);
  states_ = std::move(b.state);
  actions_ = std::move(b.action);
  if (std::isfinite(gamma)) {
    const std::vector<double> g = data.discounted_returns(gamma);
    double sum = 0;
    for (int k = 0; k < n; ++k) sum += g[static_cast<std::size_t>(index[static_cast<std::size_t>(k)])];
    mc_return_ = sum / n;
  }
  baseline_ = std::move(b.baseline);
  lower_ = std::move(b.lower);
  upper_ = std::move(b.upper);
  bounded_ = std::move(b.has_bounds);
  baseline_known_.resize(1, n);
  for (int k = 0; k < n; ++k) {
    const std::size_t i = data.row(index[static_cast<std::size_t>(k)]);
    baseline_known_(0, k) = data.columns().rows[i].has_baseline ? 1.0f : 0.0f;
  }
}

double agent_gamma(const Agent& agent) {
  const nlohmann::json h = agent.hyperparameters();
  const auto it = h.find("gamma");
  return it != h.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

void CurveProbe::set_reference(const Policy& reference) {
  reference_.resize(reference.action_dim(), states_.cols());
  Rng rng(0x2545F4914F6CDD1DULL);
  const std::vector<Rng*> rngs(static_cast<std::size_t>(states_.cols()), &rng);
  reference.act_batch(std::span<const float>(states_.data(), static_cast<std::size_t>(states_.size())),
                      std::span<float>(reference_.data(), static_cast<std::size_t>(reference_.size())), rngs, {});
}

CurvePoint CurveProbe::measure(const Agent& agent, const Losses* losses) const {
  CurvePoint p;
  p.step = agent.steps_trained();
  if (losses) p.losses = *losses;
  Matrix actions;
  Rng rng(static_cast<std::uint64_t>(p.step) * 0x9E3779B97F4A7C15ULL + 0x5DEECE66DULL);
  agent.act_batch(states_, actions, rng);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  try {
    const Matrix q = agent.q_values(states_, actions);
    p.mean_q = static_cast<double>(q.cast<double>().mean());
    p.q_data = static_cast<double>(agent.q_values(states_, actions_).cast<double>().mean());
  } catch (const std::logic_error&) {
    p.mean_q = p.q_data = nan;  // no critic
  }
  p.mc_return = mc_return_;
  p.drift = reference_.size() == 0 ? nan : (actions - reference_).cast<double>().colwise().norm().mean();
  double outside = 0, bounded = 0, dist = 0, known = 0;
  for (Eigen::Index k = 0; k < states_.cols(); ++k) {
    if (bounded_(0, k) > 0) {
      ++bounded;
      const bool out = ((actions.col(k).array() < lower_.col(k).array()) ||
                        (actions.col(k).array() > upper_.col(k).array()))
                           .any();
      outside += out ? 1.0 : 0.0;
    }
    if (baseline_known_(0, k) > 0) {
      ++known;
      dist += static_cast<double>((actions.col(k) - baseline_.col(k)).norm());
    }
  }
  p.outside_bounds = bounded > 0 ? outside / bounded : nan;
  p.baseline_distance = known > 0 ? dist / known : nan;
  return p;
}

bool is_curve_step(std::int64_t step, std::int64_t steps, int points) {
  const std::int64_t every = std::max<std::int64_t>(1, steps / std::max(1, points));
  return step == steps || step % every == 0;
}

std::vector<std::size_t> log_spaced_indices(std::size_t n, int count) {
  std::vector<std::size_t> shown;
  if (n == 0 || count < 1) return shown;
  for (int k = 0; k < count; ++k) {
    const std::size_t i =
        k == 0 || n == 1 || count == 1
            ? 0
            : static_cast<std::size_t>(std::lround(std::pow(static_cast<double>(n - 1), k / (count - 1.0))));
    if (shown.empty() || shown.back() != std::min(i, n - 1)) shown.push_back(std::min(i, n - 1));
  }
  if (shown.back() != n - 1) shown.push_back(n - 1);
  return shown;
}

}  // namespace mtf::agents
