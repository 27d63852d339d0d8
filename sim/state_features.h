// Building the agent-facing state of a user (the feature table is
// core/state_features.h).
#pragma once

#include <span>

#include "core/state_features.h"
#include "users/user.h"

namespace mtf {

/// Writes the state of a user at simulated time `now` into `out` (size kStateDim).
void build_state(const UserProfile& profile, const UserState& state, double now, std::span<float> out);

}  // namespace mtf
