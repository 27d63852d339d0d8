// Simulated time: seconds since the start of a run, and the length of a day.
// Shared by the event kernel (sim/), the user model (users/) and the state
// features, so it lives at the bottom.
#pragma once

namespace mtf {

/// Simulated time in seconds since the start of the run.
using SimTime = double;

inline constexpr SimTime kSecondsPerDay = 86400.0;

}  // namespace mtf
