// Transition rows of a tiny two-session world, shared by the dataset tests
// (tests/agents/dataset_test.cpp, tests/experiments/datasets_test.cpp).
#pragma once

#include <cstdint>

#include "core/transitions.h"

namespace mtf::testing {

/// Row `step` of `session` of `user`: state (s, 1), next state (s + 1, 1),
/// action 0.1 step, reward s, baseline 0.1 step with bounds +-0.15.
inline TransitionRow row(std::int64_t user, int session, int step, float s, bool done) {
  TransitionRow r;
  r.user = user;
  r.session = session;
  r.step = step;
  r.state = {s, 1.0f};
  r.next_state = {s + 1, 1.0f};
  r.action = {0.1f * step};
  r.reward = s;
  r.done = done;
  r.baseline = {0.1f * step};
  r.lower = {0.1f * step - 0.15f};
  r.upper = {0.1f * step + 0.15f};
  return r;
}

}  // namespace mtf::testing
