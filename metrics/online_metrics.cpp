// Aggregation and the summary table (see online_metrics.h).
#include "metrics/online_metrics.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace mtf {

GroupSummary OnlineMetrics::summarise(int g, std::int64_t users) const {
  GroupSummary s;
  s.users = users;
  GroupDayTotals sum;
  std::int64_t active_before_last = 0, returned = 0;
  for (int d = 0; d < days_; ++d) {
    const GroupDayTotals& t = at(g, d);
    sum.active += t.active;
    sum.sessions += t.sessions;
    sum.requests += t.requests;
    sum.sessions_capped += t.sessions_capped;
    sum.reward += t.reward;
    sum.counts += t.counts;
    if (d + 1 < days_) {
      active_before_last += t.active;
      returned += t.returned;
    }
  }
  const double user_days = static_cast<double>(users) * days_;
  auto per = [](double x, double n) { return n > 0 ? x / n : 0.0; };
  s.sessions_capped = sum.sessions_capped;
  s.dau_share = per(static_cast<double>(sum.active), user_days);
  s.valid_per_user_day = per(sum.counts.valid, user_days);
  s.watch_s_per_user_day = per(sum.counts.watch_seconds, user_days);
  s.dwell_s_per_user_day = per(sum.counts.dwell_seconds, user_days);
  s.positive_rate = per(sum.counts.likes + sum.counts.shares + sum.counts.comments, sum.counts.plays);
  s.sessions_per_user_day = per(static_cast<double>(sum.sessions), user_days);
  s.requests_per_session = per(static_cast<double>(sum.requests), static_cast<double>(sum.sessions));
  s.reward_per_session = per(sum.reward, static_cast<double>(sum.sessions));
  s.return_rate = days_ > 1 ? per(static_cast<double>(returned), static_cast<double>(active_before_last))
                            : std::numeric_limits<double>::quiet_NaN();
  return s;
}

std::vector<std::pair<std::string, double>> OnlineMetrics::rows(const GroupSummary& s) {
  return {{"users", static_cast<double>(s.users)},
          {"dau_share", s.dau_share},
          {"sessions_per_user_day", s.sessions_per_user_day},
          {"requests_per_session", s.requests_per_session},
          {"valid_per_user_day", s.valid_per_user_day},
          {"watch_s_per_user_day", s.watch_s_per_user_day},
          {"dwell_s_per_user_day", s.dwell_s_per_user_day},
          {"positive_rate", s.positive_rate},
          {"reward_per_session", s.reward_per_session},
          {"return_rate", s.return_rate},
          {"sessions_capped", static_cast<double>(s.sessions_capped)}};
}

std::string format_summary_table(const std::vector<GroupSummary>& groups) {
  std::ostringstream out;
  char buf[96];
  constexpr int kWidth = 18;
  auto row = [&](const char* label, auto cell) {
    std::snprintf(buf, sizeof buf, "%-24s", label);
    out << buf;
    for (const auto& g : groups) {
      std::snprintf(buf, sizeof buf, " %*s", kWidth, cell(g).c_str());
      out << buf;
    }
    out << '\n';
  };
  row("group", [](const GroupSummary& g) { return g.name.substr(0, kWidth); });
  row("policy", [](const GroupSummary& g) { return g.policy.substr(0, kWidth); });
  out << std::string(24 + (kWidth + 1) * groups.size(), '-') << '\n';
  if (groups.empty()) return out.str();
  const auto names = OnlineMetrics::rows(groups[0]);
  for (std::size_t r = 0; r < names.size(); ++r)
    row(names[r].first.c_str(), [&](const GroupSummary& g) {
      const double v = OnlineMetrics::rows(g)[r].second;
      char cell[32];
      const bool count = r == 0 || names[r].first == "sessions_capped";
      std::snprintf(cell, sizeof cell, count ? "%.0f" : "%.4f", v);
      return std::string(cell);
    });
  return out.str();
}

}  // namespace mtf
