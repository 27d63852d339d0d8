// Tests of metrics/user_metrics.h: the per-user values of each metric, and the
// lift table of a plain run, checked against stats.h's functions called on
// per-user data built here from the metrics' definitions.
#include "metrics/user_metrics.h"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"

using namespace mtf;

namespace {

constexpr int kDays = 3;

/// Random totals for `n` users over kDays days, and a group of 0..groups-1 for each.
void random_users(std::size_t n, int groups, std::vector<UserTotals>& totals,
                  std::vector<std::uint8_t>& group_of) {
  Rng rng(derive_seed(20240601, Stream::kBenchmark, 5));
  totals.assign(n, UserTotals{});
  group_of.assign(n, 0);
  for (std::size_t u = 0; u < n; ++u) {
    group_of[u] = static_cast<std::uint8_t>(rng.below(static_cast<std::uint32_t>(groups)));
    UserTotals& t = totals[u];
    t.active_days = rng.below(1u << kDays);
    t.sessions = static_cast<std::int32_t>(rng.below(5));
    t.counts.plays = static_cast<int>(rng.below(40));
    t.counts.valid = static_cast<int>(rng.below(30)) + group_of[u];  // groups differ a little
    t.counts.likes = static_cast<int>(rng.below(6));
    t.counts.shares = static_cast<int>(rng.below(3));
    t.counts.comments = static_cast<int>(rng.below(2));
    t.counts.watch_seconds = 2000 * rng.uniform01d();
    t.counts.dwell_seconds = t.counts.watch_seconds + 300 * rng.uniform01d();
    t.reward = 50 * rng.uniform01d() - 5;
  }
}

/// One user's value of a mean metric, or numerator and denominator of a ratio
/// metric, from the definitions in user_metrics.h (written out independently).
struct Parts {
  double value = 0, num = 0, den = 0;
};
Parts parts(const UserTotals& t, const std::string& metric) {
  const double d = kDays;
  if (metric == "valid_per_user_day") return {t.counts.valid / d};
  if (metric == "watch_s_per_user_day") return {t.counts.watch_seconds / d};
  if (metric == "dwell_s_per_user_day") return {t.counts.dwell_seconds / d};
  if (metric == "reward_per_user_day") return {t.reward / d};
  if (metric == "active_day_share") {
    int active = 0;
    for (int k = 0; k < kDays; ++k) active += (t.active_days >> k) & 1;
    return {active / d};
  }
  if (metric == "positive_rate")
    return {0, double(t.counts.likes + t.counts.shares + t.counts.comments), double(t.counts.plays)};
  if (metric == "return_rate") {
    // Days 0 and 1 (the last day has no next day): active, and active the day after.
    Parts p;
    for (int k = 0; k + 1 < kDays; ++k)
      if (t.active_days >> k & 1) {
        p.den += 1;
        p.num += (t.active_days >> (k + 1)) & 1;
      }
    return p;
  }
  FAIL("no definition of " << metric << " in this test");
  return {};
}

/// The lift of group g over group 0 by stats.h on the per-user values built above.
stats::Lift expected_lift(const std::vector<UserTotals>& totals,
                          const std::vector<std::uint8_t>& group_of, int g, const AbMetric& m) {
  std::vector<double> vc, vt, nc, dc, nt, dt;
  for (std::size_t u = 0; u < totals.size(); ++u) {
    if (group_of[u] != 0 && group_of[u] != g) continue;
    const Parts p = parts(totals[u], m.name);
    const bool control = group_of[u] == 0;
    (control ? vc : vt).push_back(p.value);
    (control ? nc : nt).push_back(p.num);
    (control ? dc : dt).push_back(p.den);
  }
  return m.ratio ? stats::ratio_lift(nc, dc, nt, dt) : stats::mean_lift(vc, vt);
}

}  // namespace

TEST_CASE("the lift table prints the lifts, intervals and p-values of stats.h on per-user data") {
  std::vector<UserTotals> totals;
  std::vector<std::uint8_t> group_of;
  random_users(300, 3, totals, group_of);
  const std::vector<std::string> names{"control", "treatment_a", "b"};
  const std::vector<GroupLift> lifts = lifts_against(totals, group_of, 3, 0, kDays);
  REQUIRE(lifts.size() == 2 * ab_metrics().size());
  const std::string table = format_lift_table(lifts, names, 0);
  CAPTURE(table);

  // The rows: the same inputs in the same order give the same doubles.
  for (const GroupLift& r : lifts) {
    CAPTURE(r.group);
    CAPTURE(std::string(r.metric->name));
    REQUIRE(r.lift);
    const stats::Lift want = expected_lift(totals, group_of, r.group, *r.metric);
    CHECK(r.lift->lift == want.lift);
    CHECK(r.lift->ci_low == want.ci_low);
    CHECK(r.lift->ci_high == want.ci_high);
    CHECK(r.lift->p_value == want.p_value);
    CHECK(r.control == want.control);
    CHECK(r.treatment == want.treatment);
  }

  // The printed table: each block's rows read back within the printed rounding
  // (levels to 4 decimals, percentages to 2, p to 3 significant digits).
  std::istringstream in(table);
  std::string line;
  int group = -1, rows = 0;
  while (std::getline(in, line)) {
    CHECK_MESSAGE(line.size() <= 100, line);
    if (line.rfind("treatment_a vs control", 0) == 0) group = 1;
    if (line.rfind("b vs control", 0) == 0) group = 2;
    for (const AbMetric& m : ab_metrics()) {
      if (line.rfind(std::string(m.name) + " ", 0) != 0) continue;
      REQUIRE(group > 0);
      double control = 0, treatment = 0, lift = 0, lo = 0, hi = 0, p = 0;
      char name[64];
      REQUIRE_MESSAGE(std::sscanf(line.c_str(), "%63s %lf %lf %lf%% [%lf%%, %lf%%] %lf", name,
                                  &control, &treatment, &lift, &lo, &hi, &p) == 7,
                      line);
      const stats::Lift want = expected_lift(totals, group_of, group, m);
      INFO(line);
      CHECK(std::abs(control - want.control) <= 0.5e-4 * (1 + 1e-9));
      CHECK(std::abs(treatment - want.treatment) <= 0.5e-4 * (1 + 1e-9));
      CHECK(std::abs(lift - 100 * want.lift) <= 0.005 * (1 + 1e-9));
      CHECK(std::abs(lo - 100 * want.ci_low) <= 0.005 * (1 + 1e-9));
      CHECK(std::abs(hi - 100 * want.ci_high) <= 0.005 * (1 + 1e-9));
      CHECK(std::abs(p - want.p_value) <= 5e-3 * want.p_value);
      ++rows;
    }
  }
  CHECK(rows == static_cast<int>(2 * ab_metrics().size()));
}

TEST_CASE("a lift that is undefined is printed as n/a, not as a number") {
  // The control's users have no valid consumption: the relative lift of
  // valid_per_user_day divides by 0.
  std::vector<UserTotals> totals(6);
  const std::vector<std::uint8_t> group_of{0, 0, 0, 1, 1, 1};
  for (std::size_t u = 0; u < totals.size(); ++u) {
    totals[u].active_days = u % 2 ? 0b011 : 0b111;
    totals[u].counts.plays = 10 + static_cast<int>(u);
    totals[u].counts.likes = 1 + static_cast<int>(u % 3);
    totals[u].counts.valid = group_of[u] == 0 ? 0 : static_cast<int>(u);
    totals[u].counts.watch_seconds = 100.0 * static_cast<double>(u + 1);
    totals[u].reward = static_cast<double>(u);
  }
  const auto lifts = lifts_against(totals, group_of, 2, 0, kDays);
  const std::string table = format_lift_table(lifts, {"c", "t"}, 0);
  CAPTURE(table);
  CHECK(!lifts.front().lift);
  CHECK(table.find("valid_per_user_day") != std::string::npos);
  std::istringstream in(table);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("valid_per_user_day", 0) == 0) CHECK(line.find("n/a") != std::string::npos);
  CHECK(lifts[1].lift);  // watch seconds: defined
}

TEST_CASE("per-user values of one group follow the metrics' definitions") {
  std::vector<UserTotals> totals;
  std::vector<std::uint8_t> group_of;
  random_users(50, 2, totals, group_of);
  const ArmValues a = arm_values(totals, group_of, 1, kDays);
  std::size_t k = 0;
  for (std::size_t u = 0; u < totals.size(); ++u) {
    if (group_of[u] != 1) continue;
    for (const AbMetric& m : ab_metrics()) {
      CAPTURE(m.name);
      const Parts p = parts(totals[u], m.name);
      if (m.ratio) {
        CHECK(a.num.at(m.name)[k] == p.num);
        CHECK(a.den.at(m.name)[k] == p.den);
      } else {
        CHECK(a.value.at(m.name)[k] == p.value);
      }
    }
    ++k;
  }
  CHECK(a.users == static_cast<std::int64_t>(k));
  CHECK(k > 10);
}
