// The instant reward of one request: seed 000 Formula 2, r = sum_i w_i v_i,
// with the behaviours v of the shown list and weights w from the scenario.
#pragma once

#include "sim/scenario.h"
#include "sim/tasks.h"

namespace mtf {

inline double reward_of(const RewardParams& w, const BehaviourCounts& v) {
  return w.play * v.plays + w.valid * v.valid + w.watch_minutes * (v.watch_seconds / 60.0) +
         w.finish * v.finishes + w.like * v.likes + w.share * v.shares + w.comment * v.comments +
         w.skip * v.skips;
}

}  // namespace mtf
