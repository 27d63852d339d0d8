// User-level metrics of a comparison between groups (arms): each user's totals
// over a window of days (UserTotals, which the simulator accumulates), the
// metrics computed from them per user (means of per-user values, and ratios of
// per-user sums), and each group's lift over a control group with the
// delta-method interval and p-value of stats.h. The user is the unit of
// randomisation, so these per-user values are the independent samples the
// statistics need. Shared by the summary of a plain run and by the experiment's
// exploration, A/B and oracle stages, so all of them compute a lift alike.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tasks.h"
#include "metrics/stats.h"

namespace mtf {

/// One user's totals over the days simulated since the totals were last reset.
struct UserTotals {
  /// Days a window can span: one bit of active_days per day.
  static constexpr int kMaxDays = 64;
  std::uint64_t active_days = 0;  ///< bit d set: active on day d (days counted from the reset)
  std::int32_t sessions = 0, requests = 0;
  double reward = 0;
  /// Sum over the user's sessions of the in-session discounted return,
  /// sum_k gamma^k r_k over a session's requests k = 0, 1, ... (gamma:
  /// Simulator::set_return_gamma).
  double discounted_return = 0;
  /// The user's requests chained across sessions (the cross-session
  /// formulation's return from the window's first request, discounted per
  /// request): sum_n gamma^n r_n over all the user's requests n = 0, 1, ...
  /// since the reset, whatever session they belong to.
  double chained_return = 0;
  /// Sum over the user's sessions started on the window's first day of the
  /// chained return from the session's first request: sum over those starts
  /// j0 of sum_{n >= j0} gamma^(n - j0) r_n over the user's requests n of the
  /// window (the cross-session formulation's value of a session-initial state,
  /// what an off-policy estimator on a chained dataset averages, truncated at
  /// the window's end: first-day sessions have the longest window after them).
  double chained_session_return = 0;
  /// The carry of chained_session_return: sum over those session starts j0 of
  /// gamma^(n + 1 - j0), n the user's latest request (the weight the user's
  /// next request would get). At the window's end it is the discount weight
  /// the window cuts off: the sum over the sessions of gamma^m, m the requests
  /// from a start to the end.
  double chained_session_weight = 0;
  std::int32_t first_day_sessions = 0;  ///< sessions started on the window's first day
  /// Explicit, so that the struct has no padding: saved states copy it as
  /// bytes and compare them (an implicit gap's bytes are indeterminate).
  std::int32_t reserved = 0;
  BehaviourCounts counts;
};

/// Names of the user-level metrics (the run database's `metric` column).
namespace user_metric {
inline constexpr const char* kValidPerUserDay = "valid_per_user_day";
inline constexpr const char* kWatchPerUserDay = "watch_s_per_user_day";
inline constexpr const char* kDwellPerUserDay = "dwell_s_per_user_day";
inline constexpr const char* kRewardPerUserDay = "reward_per_user_day";
inline constexpr const char* kActiveDayShare = "active_day_share";
inline constexpr const char* kPositiveRate = "positive_rate";
inline constexpr const char* kReturnRate = "return_rate";
/// The in-session discounted return per session (a ratio: UserTotals::
/// discounted_return over sessions); arm_values gives it, the oracle reports
/// it, the A/B test does not (not in ab_metrics()).
inline constexpr const char* kDiscountedReturn = "discounted_return_per_session";
/// The cross-session return per user (UserTotals::chained_return, a mean over
/// users, inactive users counting 0); arm_values gives it, the oracle reports
/// it, the A/B test does not.
inline constexpr const char* kChainedReturn = "chained_return_per_user";
/// The cross-session return per session start (a ratio: UserTotals::
/// chained_session_return over first_day_sessions): what FQE-type estimators
/// on a chained dataset estimate, within the window; arm_values gives it, the
/// oracle reports it, the A/B test does not.
inline constexpr const char* kChainedSessionReturn = "chained_return_per_session";
/// Per first-day session, the discount weight beyond the window, gamma^m (m
/// the session's start's requests to the window's end; a ratio:
/// UserTotals::chained_session_weight over first_day_sessions): how far
/// chained_return_per_session falls short of the untruncated value, as a
/// share of its discount horizon (0: nothing cut off; at gamma 1 it is 1).
inline constexpr const char* kChainedTailWeight = "chained_tail_weight";
}  // namespace user_metric

/// A user-level metric: a mean of per-user values (valid consumptions per day)
/// or a ratio of sums over users (likes per play), whose lift needs the delta
/// method over the users' numerators and denominators.
struct AbMetric {
  const char* name;
  const char* label;
  bool ratio;
};
/// The metrics, in report order: valid consumption, watch and dwell seconds,
/// reward (Formula 2) and active days per user-day; positive interactions per
/// play and next-day return rate (ratios).
const std::vector<AbMetric>& ab_metrics();

/// Per-user values of every metric for the users of one group over a window of
/// `days` days (bit 0 of active_days = the window's first day), in user order.
struct ArmValues {
  std::map<std::string, std::vector<double>> value;     ///< mean metrics
  std::map<std::string, std::vector<double>> num, den;  ///< ratio metrics
  std::int64_t users = 0;
};

/// The values of the users u with group_of_user[u] == group. `totals` and
/// `group_of_user` have one entry per user; days in [1, UserTotals::kMaxDays].
ArmValues arm_values(std::span<const UserTotals> totals, std::span<const std::uint8_t> group_of_user,
                     int group, int days);
/// The arm's value of m: the mean of the per-user values, or sum(num) / sum(den)
/// (NaN when the denominators sum to 0).
double arm_level(const ArmValues& a, const AbMetric& m);
/// Lift of `t` over `c` for metric m with its 95% interval and two-sided p-value
/// (stats::mean_lift, or stats::ratio_lift for ratios), or nullopt when it is
/// undefined (a control level of 0, fewer than 2 users in an arm).
std::optional<stats::Lift> arm_lift(const ArmValues& c, const ArmValues& t, const AbMetric& m);

/// One group's lift over the control group for one metric.
struct GroupLift {
  int group = 0;
  const AbMetric* metric = nullptr;
  double control = 0, treatment = 0;  ///< the arms' levels: the lift's, else arm_level
  std::optional<stats::Lift> lift;    ///< nullopt: undefined (see arm_lift)
};

/// The lift of every group but `control` over `control`, for every metric of
/// ab_metrics(): groups in order, metrics in report order.
std::vector<GroupLift> lifts_against(std::span<const UserTotals> totals,
                                     std::span<const std::uint8_t> group_of_user, int groups,
                                     int control, int days);

/// A plain-text table of lifts_against's rows, one block per group (under 100
/// columns): the metric, both levels, the lift in percent, its 95% interval and
/// the p-value. `group_names` is indexed by group.
std::string format_lift_table(const std::vector<GroupLift>& lifts,
                              const std::vector<std::string>& group_names, int control);

}  // namespace mtf
