// Stage 5 of the protocol (see stages.h): the online A/B test, its arms on
// disjoint random groups of a fresh user sample, replicated over user seeds,
// with an optional CUPED pre-period.
#include <cmath>
#include <nlohmann/json.hpp>

#include "experiments/metric_keys.h"
#include "experiments/stages.h"

namespace mtf::experiments {

using nlohmann::json;

namespace {

/// Each arm's days of replicate 0 (section ab_daily): the share of its users
/// active that day and, but on the last day, the share of those who came
/// back the next day. The simulator counts both anyway; the per-user totals
/// behind the lifts have no per-day figures.
void daily_rows(ExperimentContext& ctx, const OnlineMetrics& m) {
  const AbSpec& ab = *ctx.ex.ab;
  for (int k = 0; k < m.groups(); ++k)
    for (int d = 0; d < m.days(); ++d) {
      const GroupDayTotals& t = m.at(k, d);
      const std::string& arm = ab.arms[static_cast<std::size_t>(k)];
      const double users = static_cast<double>(t.users);
      MetricRow active = plain(keys::kAbDaily, arm, keys::kActiveShare,
                               users > 0 ? static_cast<double>(t.active) / users : std::nan(""), t.users);
      active.rep = d;
      ctx.M.push_back(active);
      if (d + 1 < m.days()) {
        MetricRow r = plain(keys::kAbDaily, arm, keys::kReturnRate,
                            t.active > 0 ? static_cast<double>(t.returned) / static_cast<double>(t.active)
                                         : std::nan(""),
                            t.active);
        r.rep = d;
        ctx.M.push_back(r);
      }
    }
}

}  // namespace

void run_ab_tests(ExperimentContext& ctx, int first_rep, const std::function<void(int)>& after_replicate) {
  using namespace keys;
  const AbSpec& ab = *ctx.ex.ab;
  Scenario as = ctx.sc;
  as.population.size = ab.users;
  as.days = ab.pre_days + ab.days;
  as.groups.clear();
  std::vector<PolicyPtr> arm_policy;
  int control = 0;
  for (std::size_t k = 0; k < ab.arms.size(); ++k) {
    as.groups.push_back(GroupSpec{ab.arms[k], 1.0, PolicySpec{}});
    for (const auto& p : ctx.policies)
      if (p.first == ab.arms[k]) arm_policy.push_back(p.second);
    if (ab.arms[k] == ab.control) control = static_cast<int>(k);
  }
  for (int rep = first_rep; rep < ab.replicates; ++rep) {
    const auto ta = Clock::now();
    std::vector<PolicyPtr> pre(arm_policy.size(), arm_policy[static_cast<std::size_t>(control)]);
    Simulator asim(as, ab.pre_days > 0 ? pre : arm_policy, ctx.sub_seed(kAbUsers, static_cast<std::uint64_t>(rep)),
                   UserSharding{ctx.opt.cluster});  // each rank holds its users
    asim.track_user_totals(true);
    RunOptions ao;
    ao.threads = ctx.opt.threads;
    ao.cluster = ctx.opt.cluster;
    std::vector<UserTotals> pre_totals;
    if (ab.pre_days > 0) {
      ctx.sessions_capped += asim.run_days(ab.pre_days, ao, nullptr).sessions_capped;
      pre_totals = asim.user_totals();
      asim.reset_user_totals();
      for (std::size_t k = 0; k < arm_policy.size(); ++k)
        asim.set_policy(static_cast<int>(k), arm_policy[k]);
    }
    const RunResult ab_run = asim.run_days(ab.days, ao, nullptr);
    ctx.sessions_capped += ab_run.sessions_capped;
    if (rep == 0) daily_rows(ctx, ab_run.metrics);
    const ArmValues c = arm_values(asim.user_totals(), asim.group_assignment(), control, ab.days);
    std::optional<ArmValues> c_pre;
    if (ab.pre_days > 0) c_pre = arm_values(pre_totals, asim.group_assignment(), control, ab.pre_days);
    for (std::size_t k = 0; k < ab.arms.size(); ++k) {
      const ArmValues t = arm_values(asim.user_totals(), asim.group_assignment(), static_cast<int>(k), ab.days);
      std::optional<ArmValues> t_pre;
      if (ab.pre_days > 0 && static_cast<int>(k) != control)
        t_pre = arm_values(pre_totals, asim.group_assignment(), static_cast<int>(k), ab.pre_days);
      for (const AbMetric& m : ab_metrics()) {
        ctx.M.push_back(plain(kAbLevel, ab.arms[k], m.name, arm_level(t, m), t.users));
        if (static_cast<int>(k) == control) {
          ctx.online[m.name][ab.arms[k]].push_back(0.0);
          continue;
        }
        const auto l = arm_lift(c, t, m);
        if (!l) continue;
        ctx.M.push_back(lift_row(kAb, ab.arms[k], m.name, *l, rep));
        ctx.online[m.name][ab.arms[k]].push_back(l->lift);
        if (t_pre && !m.ratio) {
          try {
            const stats::Cuped cu = stats::cuped(c.value.at(m.name), c_pre->value.at(m.name),
                                                 t.value.at(m.name), t_pre->value.at(m.name));
            MetricRow r = lift_row(kAbCuped, ab.arms[k], m.name,
                                   stats::mean_lift(cu.control, cu.treatment), rep);
            json d = json::parse(r.details);
            d[keys::detail::kTheta] = cu.theta;
            d[keys::detail::kVarianceReduction] = cu.variance_reduction;
            r.details = d.dump();
            ctx.M.push_back(r);
          } catch (const std::invalid_argument&) {
            // No variance in the pre-period (tiny arms): no CUPED row.
          }
        }
      }
    }
    ctx.log("A/B replicate " + std::to_string(rep + 1) + "/" + std::to_string(ab.replicates) +
            ": " + std::to_string(ab.arms.size()) + " arms x " +
            std::to_string(ab.users / static_cast<std::int64_t>(ab.arms.size())) + " users x " +
            std::to_string(ab.days) + " days, " + std::to_string(seconds_since(ta)).substr(0, 5) +
            " s");
    if (after_replicate) after_replicate(rep);
  }
  for (const auto& [metric, arms] : ctx.online)
    for (const auto& [arm, lifts] : arms) {
      if (arm == ab.control) continue;
      const stats::Summary s = stats::summarise(lifts);
      ctx.M.push_back(plain(kAbSummary, arm, metric, s.mean, static_cast<std::int64_t>(s.n),
                            json{{keys::detail::kSd, s.sd}, {keys::detail::kMin, s.min}, {keys::detail::kMax, s.max}}.dump()));
    }
}

}  // namespace mtf::experiments
