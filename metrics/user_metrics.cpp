// User-level metrics and lifts between groups (see user_metrics.h).
#include "metrics/user_metrics.h"

#include <bit>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace mtf {

const std::vector<AbMetric>& ab_metrics() {
  using namespace user_metric;
  static const std::vector<AbMetric> m = {
      {kValidPerUserDay, "valid consumption / user-day", false},
      {kWatchPerUserDay, "duration time (watch s) / user-day", false},
      {kDwellPerUserDay, "app dwell time (s) / user-day", false},
      {kRewardPerUserDay, "reward (Formula 2) / user-day", false},
      {kActiveDayShare, "active days / user-days", false},
      {kPositiveRate, "positive interactions / play", true},
      {kReturnRate, "next-day return rate", true},
  };
  return m;
}

ArmValues arm_values(std::span<const UserTotals> totals, std::span<const std::uint8_t> group_of_user,
                     int group, int days) {
  using namespace user_metric;
  assert(totals.size() == group_of_user.size());
  assert(days >= 1 && days <= UserTotals::kMaxDays);
  ArmValues a;
  for (std::size_t u = 0; u < totals.size(); ++u) {
    if (group_of_user[u] != group) continue;
    const UserTotals& t = totals[u];
    ++a.users;
    const double d = days;
    a.value[kValidPerUserDay].push_back(t.counts.valid / d);
    a.value[kWatchPerUserDay].push_back(t.counts.watch_seconds / d);
    a.value[kDwellPerUserDay].push_back(t.counts.dwell_seconds / d);
    a.value[kRewardPerUserDay].push_back(t.reward / d);
    a.value[kActiveDayShare].push_back(std::popcount(t.active_days) / d);
    a.num[kPositiveRate].push_back(t.counts.likes + t.counts.shares + t.counts.comments);
    a.den[kPositiveRate].push_back(t.counts.plays);
    int eligible = 0, returned = 0;
    for (int k = 0; k + 1 < days; ++k) {
      if (!(t.active_days >> k & 1u)) continue;
      ++eligible;
      returned += static_cast<int>(t.active_days >> (k + 1) & 1u);
    }
    a.num[kReturnRate].push_back(returned);
    a.den[kReturnRate].push_back(eligible);
    a.num[kDiscountedReturn].push_back(t.discounted_return);
    a.den[kDiscountedReturn].push_back(t.sessions);
    a.value[kChainedReturn].push_back(t.chained_return);
    a.num[kChainedSessionReturn].push_back(t.chained_session_return);
    a.den[kChainedSessionReturn].push_back(t.first_day_sessions);
    a.num[kChainedTailWeight].push_back(t.chained_session_weight);
    a.den[kChainedTailWeight].push_back(t.first_day_sessions);
  }
  return a;
}

double arm_level(const ArmValues& a, const AbMetric& m) {
  if (!m.ratio) return stats::summarise(a.value.at(m.name)).mean;
  double n = 0, d = 0;
  for (double x : a.num.at(m.name)) n += x;
  for (double x : a.den.at(m.name)) d += x;
  return d > 0 ? n / d : std::nan("");
}

std::optional<stats::Lift> arm_lift(const ArmValues& c, const ArmValues& t, const AbMetric& m) {
  try {
    if (!m.ratio) return stats::mean_lift(c.value.at(m.name), t.value.at(m.name));
    return stats::ratio_lift(c.num.at(m.name), c.den.at(m.name), t.num.at(m.name),
                             t.den.at(m.name));
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

std::vector<GroupLift> lifts_against(std::span<const UserTotals> totals,
                                     std::span<const std::uint8_t> group_of_user, int groups,
                                     int control, int days) {
  std::vector<GroupLift> out;
  const ArmValues c = arm_values(totals, group_of_user, control, days);
  for (int g = 0; g < groups; ++g) {
    if (g == control) continue;
    const ArmValues t = arm_values(totals, group_of_user, g, days);
    for (const AbMetric& m : ab_metrics()) {
      GroupLift r{g, &m, arm_level(c, m), arm_level(t, m), arm_lift(c, t, m)};
      if (r.lift) {
        // The levels the lift divides (a ratio as mean(num) / mean(den) rounds
        // apart from sum(num) / sum(den) in the last bit).
        r.control = r.lift->control;
        r.treatment = r.lift->treatment;
      }
      out.push_back(r);
    }
  }
  return out;
}

std::string format_lift_table(const std::vector<GroupLift>& lifts,
                              const std::vector<std::string>& group_names, int control) {
  // Columns: metric 22, levels 11 + 11, lift 9, interval 22, p 9: 90 in all.
  constexpr int kLevel = 11;
  auto cut = [](const std::string& s, std::size_t w) { return s.substr(0, w); };
  const std::string& cname = group_names.at(static_cast<std::size_t>(control));
  std::ostringstream out;
  char buf[160];
  std::string ratios;
  for (const AbMetric& m : ab_metrics())
    if (m.ratio) ratios += std::string(ratios.empty() ? "" : ", ") + m.name;
  out << "Lifts against " << cname << ", over users: 95% delta-method interval; two-sided p from\n"
      << "Welch's t-test (means) or a z-test of the ratios (" << ratios << ")\n";
  int block = -1;
  for (const GroupLift& r : lifts) {
    if (r.group != block) {
      block = r.group;
      const std::string tname = group_names.at(static_cast<std::size_t>(r.group));
      std::snprintf(buf, sizeof buf, "\n%-22s %*s %*s %9s  %-22s %9s\n",
                    cut(tname + " vs " + cname, 22).c_str(), kLevel, cut(cname, kLevel).c_str(),
                    kLevel, cut(tname, kLevel).c_str(), "lift", "95% interval", "p");
      out << buf << std::string(90, '-') << '\n';
    }
    std::snprintf(buf, sizeof buf, "%-22s %*.4f %*.4f", r.metric->name, kLevel, r.control, kLevel,
                  r.treatment);
    out << buf;
    if (!r.lift) {
      out << "       n/a  (undefined: a control level of 0 or fewer than 2 users)\n";
      continue;
    }
    const stats::Lift& l = *r.lift;
    char interval[64];
    std::snprintf(interval, sizeof interval, "[%+.2f%%, %+.2f%%]", 100 * l.ci_low,
                  100 * l.ci_high);
    std::snprintf(buf, sizeof buf, " %+8.2f%%  %-22s %9.3g\n", 100 * l.lift, interval, l.p_value);
    out << buf;
  }
  return out.str();
}

}  // namespace mtf
