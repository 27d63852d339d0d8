// The convergence rule (convergence.h).
#include "experiments/convergence.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mtf::experiments {

const char* verdict_name(CurveVerdict v) {
  switch (v) {
    case CurveVerdict::kTooShort: return "too_short";
    case CurveVerdict::kConverged: return "converged";
    case CurveVerdict::kImproving: return "improving";
    case CurveVerdict::kUnstable: return "unstable";
  }
  return "unknown";
}

CurveVerdict assess_curve(const std::vector<CheckpointValue>& all, const ConvergenceRule& rule) {
  if (rule.window < 2) throw std::invalid_argument("assess_curve: the window must hold at least 2 checkpoints");
  if (!(rule.tolerance >= 0)) throw std::invalid_argument("assess_curve: the tolerance must be >= 0");
  std::vector<CheckpointValue> c;
  for (const CheckpointValue& x : all)
    if (x.step >= rule.min_step) c.push_back(x);
  const std::size_t w = static_cast<std::size_t>(rule.window);
  if (c.size() < w) return CurveVerdict::kTooShort;
  const std::size_t first = c.size() - w;
  // Written so that a NaN anywhere makes the comparison false.
  const auto agree = [&](const CheckpointValue& a, const CheckpointValue& b) {
    return std::abs(a.difference - b.difference) <= std::max(a.half_width, b.half_width) + rule.tolerance &&
           std::isfinite(a.half_width) && std::isfinite(b.half_width);
  };
  bool flat = true;
  for (std::size_t i = first; i < c.size() && flat; ++i)
    for (std::size_t j = i + 1; j < c.size() && flat; ++j) flat = agree(c[i], c[j]);
  if (flat) return CurveVerdict::kConverged;
  const CheckpointValue& a = c[first];
  const CheckpointValue& b = c.back();
  if (b.difference - a.difference > std::max(a.half_width, b.half_width) + rule.tolerance)
    return CurveVerdict::kImproving;
  return CurveVerdict::kUnstable;
}

std::vector<std::int64_t> checkpoint_steps(std::int64_t first, std::int64_t cap) {
  if (first < 1) throw std::invalid_argument("checkpoint_steps: the first checkpoint must be at step >= 1");
  std::vector<std::int64_t> s;
  if (cap < 1) return s;
  for (std::int64_t k = first; k < cap; k *= 2) s.push_back(k);
  s.push_back(cap);
  return s;
}

}  // namespace mtf::experiments
