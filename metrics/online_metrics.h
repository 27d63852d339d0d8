// Online metrics: per user and day, aggregated per group (arm), as industry
// A/B tests report them: valid consumption, duration time (watch seconds), app
// dwell time, positive-interaction rate, sessions, requests per session and
// next-day return rate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tasks.h"

namespace mtf {

/// Sums over the user-days of one group on one day.
struct GroupDayTotals {
  std::int64_t users = 0;         ///< users assigned to the group
  std::int64_t active = 0;        ///< users with at least one session that day
  std::int64_t returned = 0;      ///< of those active that day, active again the next day
  std::int64_t sessions = 0;
  std::int64_t requests = 0;
  /// Sessions ended by a cap of the scenario's limits block, not by the user.
  std::int64_t sessions_capped = 0;
  double reward = 0;
  BehaviourCounts counts;
};

/// The summary of one group over the run (all per-user figures average over every
/// user assigned to the group, active or not, so retention counts).
struct GroupSummary {
  std::string name;
  std::string policy;
  std::int64_t users = 0;
  double dau_share = 0;               ///< mean daily active users / users
  double valid_per_user_day = 0;      ///< valid consumptions per user per day
  double watch_s_per_user_day = 0;    ///< duration time: watch seconds per user per day
  double dwell_s_per_user_day = 0;    ///< app dwell time per user per day
  double positive_rate = 0;           ///< (likes + shares + comments) / plays
  double sessions_per_user_day = 0;
  double requests_per_session = 0;
  double reward_per_session = 0;
  double return_rate = 0;             ///< next-day return rate (days 0..D-2); NaN for one-day runs
  std::int64_t sessions_capped = 0;   ///< sessions ended by a cap (scenario "limits"), over the run
};

/// Accumulates per (group, day) totals; add() must be called in a fixed order for
/// bit-identical floating-point sums (the simulator calls it in user order).
class OnlineMetrics {
 public:
  OnlineMetrics(int groups, int days) : groups_(groups), days_(days), totals_(groups * days) {}
  GroupDayTotals& at(int group, int day) { return totals_[group * days_ + day]; }
  const GroupDayTotals& at(int group, int day) const { return totals_[group * days_ + day]; }
  int groups() const { return groups_; }
  int days() const { return days_; }

  GroupSummary summarise(int group, std::int64_t users) const;
  /// The summary's metrics as (name, value) pairs in table order.
  static std::vector<std::pair<std::string, double>> rows(const GroupSummary& s);

 private:
  int groups_, days_;
  std::vector<GroupDayTotals> totals_;
};

/// A plain-text table of the summaries, one column per group.
std::string format_summary_table(const std::vector<GroupSummary>& groups);

}  // namespace mtf
