// When a training has stopped improving: the oracle's true value of an agent
// at checkpoints of its training (doubling steps), each as a paired
// difference against a fixed reference policy on the same users, and a rule
// that calls the curve flat when the last few checkpoints agree within the
// oracle's intervals. The experiment's training stage trains an agent until
// the rule holds or its step cap is reached (docs/experiments.md, "Training
// until the curve is flat").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mtf::experiments {

/// The oracle's value of one checkpoint: the agent's reward per user-day
/// minus the reference policy's, on the same users (common random numbers),
/// with the half-width of its paired 95% interval.
struct CheckpointValue {
  std::int64_t step = 0;
  double difference = 0;
  double half_width = 0;
};

/// What the rule concludes about a curve.
enum class CurveVerdict {
  kTooShort,   ///< fewer checkpoints than the window
  kConverged,  ///< the window's checkpoints agree: the curve is flat
  kImproving,  ///< the last checkpoint is above the window's first, beyond the tolerance
  kUnstable    ///< neither: falling, or moving by more than the tolerance both ways
};
const char* verdict_name(CurveVerdict v);

struct ConvergenceRule {
  /// Checkpoints compared, the last included (>= 2). With doubling steps, a
  /// window of 3 asks that the value did not move over the last three
  /// quarters of the training.
  int window = 3;
  /// Differences smaller than this (absolute, in the value's units) count as
  /// equal even where the intervals are narrower: the smallest change worth
  /// training for (0: the intervals alone decide).
  double tolerance = 0;
  /// Checkpoints before this step do not count: a training's first thousand
  /// or so steps often hold a plateau (the critics not yet fitted) that a
  /// later rise ends (docs/convergence.md), and a window inside it looks flat.
  std::int64_t min_step = 0;
};

/// The rule: with c_1 .. c_w the last `window` checkpoints at or after
/// rule.min_step (fewer: kTooShort), the curve is flat
/// when every two of them agree: |d_i - d_j| <= max(h_i, h_j) + tolerance
/// (d the differences, h their half-widths). Otherwise it is improving when
/// d_w - d_1 > max(h_1, h_w) + tolerance, and unstable else. Checkpoints in
/// step order. A NaN difference or half-width never agrees.
CurveVerdict assess_curve(const std::vector<CheckpointValue>& checkpoints, const ConvergenceRule& rule);

/// The steps at which a training capped at `cap` steps is checked: first,
/// 2 first, 4 first, ... below cap, then cap. Empty when cap < 1; {cap} when
/// first >= cap. first >= 1.
std::vector<std::int64_t> checkpoint_steps(std::int64_t first, std::int64_t cap);

}  // namespace mtf::experiments
