// The instant reward of one request: IntegratedRL-MTF Formula 2, r = sum_i w_i v_i,
// with the behaviours v of the shown list and weights w from the scenario.
#pragma once

#include "core/tasks.h"

namespace mtf {

/// Formula 2 of IntegratedRL-MTF: reward = sum_i w_i v_i over the behaviours of one request.
struct RewardParams {
  double play = 0.0, valid = 1.0, watch_minutes = 0.5, finish = 0.3, like = 1.0, share = 2.0,
         comment = 1.0, skip = -0.1;
  bool operator==(const RewardParams&) const = default;
};

inline double reward_of(const RewardParams& w, const BehaviourCounts& v) {
  return w.play * v.plays + w.valid * v.valid + w.watch_minutes * (v.watch_seconds / 60.0) +
         w.finish * v.finishes + w.like * v.likes + w.share * v.shares + w.comment * v.comments +
         w.skip * v.skips;
}

}  // namespace mtf
