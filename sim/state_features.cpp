// Building the agent-facing state vector (feature table in state_features.h).
#include "sim/state_features.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>

#include "core/sim_time.h"

namespace mtf {
namespace {
inline float clip(float x, float lo, float hi) { return std::min(hi, std::max(lo, x)); }
inline float rate(int n, int d) { return d > 0 ? static_cast<float>(n) / static_cast<float>(d) : 0.0f; }
}  // namespace

void build_state(const UserProfile& p, const UserState& s, double now, std::span<float> out) {
  assert(out.size() == kStateDim);
  const BehaviourHistory& h = s.history;
  int top[3] = {0, 0, 0};
  int distinct = 0;
  for (const int c : h.played_by_topic()) {
    distinct += c > 0;
    if (c > top[0]) { top[2] = top[1]; top[1] = top[0]; top[0] = c; }
    else if (c > top[1]) { top[2] = top[1]; top[1] = c; }
    else if (c > top[2]) top[2] = c;
  }
  const int n = h.count();
  const int plays = h.with(BehaviourHistory::kPlayed);
  const double day_start = std::floor(now / kSecondsPerDay) * kSecondsPerDay;
  const double hour = (now - day_start) / 3600.0;
  const double angle = 2.0 * std::numbers::pi * hour / 24.0;

  int i = 0;
  out[i++] = static_cast<float>(p.age_group) / 3.0f;
  out[i++] = static_cast<float>(p.male);
  const double days = std::floor(now / kSecondsPerDay) + 1.0;
  out[i++] = clip(static_cast<float>(std::log2((s.sessions_total + 1) / days) / 3.0), -1.0f, 1.0f);
  out[i++] = rate(top[0], plays);
  out[i++] = rate(top[1], plays);
  out[i++] = rate(top[2], plays);
  out[i++] = clip(static_cast<float>(distinct) / 10.0f, 0.0f, 2.0f);
  out[i++] = rate(plays, n);
  out[i++] = rate(h.with(BehaviourHistory::kValid), n);
  out[i++] = rate(h.with(BehaviourHistory::kFinished), n);
  out[i++] = clip(10.0f * rate(h.with(BehaviourHistory::kLiked), n), 0.0f, 1.0f);
  out[i++] = clip(20.0f * rate(h.with(BehaviourHistory::kShared), n), 0.0f, 1.0f);
  out[i++] = clip(20.0f * rate(h.with(BehaviourHistory::kCommented), n), 0.0f, 1.0f);
  out[i++] = rate(h.with(BehaviourHistory::kSkipped), n);
  out[i++] = clip(plays > 0 ? h.watch_seconds() / static_cast<float>(plays) / 60.0f : 0.0f, 0.0f, 2.0f);
  out[i++] = static_cast<float>(n) / BehaviourHistory::kCapacity;
  out[i++] = clip(static_cast<float>(s.requests_in_session) / 20.0f, 0.0f, 2.0f);
  out[i++] = clip(static_cast<float>((now - s.session_start) / 60.0 / 30.0), 0.0f, 2.0f);
  const BehaviourCounts& last = s.last_request;
  out[i++] = rate(last.plays, last.shown);
  out[i++] = rate(last.valid, last.shown);
  out[i++] = rate(last.skips, last.shown);
  out[i++] = clip(last.watch_seconds / 120.0f, 0.0f, 2.0f);
  out[i++] = rate(s.session.valid, s.session.shown);
  out[i++] = rate(s.session.skips, s.session.shown);
  out[i++] = static_cast<float>(std::sin(angle));
  out[i++] = static_cast<float>(std::cos(angle));
  out[i++] = clip(static_cast<float>(s.sessions_today) / 5.0f, 0.0f, 2.0f);
  out[i++] = s.last_session_end < 0
                 ? 2.0f
                 : clip(static_cast<float>((s.session_start - s.last_session_end) / 3600.0 / 24.0), 0.0f, 2.0f);
  out[i++] = clip(static_cast<float>(s.last_session_requests) / 20.0f, 0.0f, 2.0f);
  out[i++] = s.last_session_valid_rate;
  out[i++] = clip(s.session_reward / 10.0f, -1.0f, 3.0f);
  out[i++] = 1.0f;
  assert(i == kStateDim);
}

}  // namespace mtf
