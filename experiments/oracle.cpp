// The oracle (oracle.h): each policy on the same evaluation users, per-user
// values from arm_values (metrics/user_metrics.h), and paired differences against the
// first policy. Ratio metrics (the return rate) are linearised per user
// (num - R den) / mean(den), so means and ratios share one interval formula.
#include "experiments/oracle.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "experiments/context.h"
#include "experiments/metric_keys.h"
#include "metrics/stats.h"
#include "sim/simulator.h"

namespace mtf::experiments {

using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool is_ratio(const std::string& metric) {
  if (metric == user_metric::kDiscountedReturn || metric == user_metric::kChainedSessionReturn ||
      metric == user_metric::kChainedTailWeight)
    return true;
  for (const AbMetric& m : ab_metrics())
    if (metric == m.name) return m.ratio;
  return false;
}

/// One policy's per-user values of one metric, linearised, with its level.
struct Linear {
  double level = kNaN;
  std::vector<double> z;  ///< per user; var(z) / n is the level's variance
};

Linear linearise(const ArmValues& a, const std::string& metric) {
  Linear l;
  if (!is_ratio(metric)) {
    l.z = a.value.at(metric);
    l.level = stats::summarise(l.z).mean;
    return l;
  }
  const auto& num = a.num.at(metric);
  const auto& den = a.den.at(metric);
  double sn = 0, sd = 0;
  for (std::size_t u = 0; u < num.size(); ++u) sn += num[u], sd += den[u];
  if (!(sd > 0)) return l;
  l.level = sn / sd;
  const double mean_den = sd / static_cast<double>(den.size());
  l.z.resize(num.size());
  for (std::size_t u = 0; u < num.size(); ++u) l.z[u] = (num[u] - l.level * den[u]) / mean_den;
  return l;
}

double variance(const std::vector<double>& x) {
  const double s = stats::summarise(x).sd;
  return s * s;
}

json number(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

std::string fmt(double x, int precision = 4) {
  if (std::isnan(x)) return "n/a";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::ostringstream o;
  o.precision(precision);
  o << x;
  return o.str();
}

}  // namespace

const std::vector<std::string>& oracle_metrics() {
  using namespace keys;
  static const std::vector<std::string> m = {kRewardPerUserDay, kValidPerUserDay, kWatchPerUserDay,
                                             kDwellPerUserDay, kReturnRate, user_metric::kDiscountedReturn,
                                             user_metric::kChainedReturn, user_metric::kChainedSessionReturn,
                                             user_metric::kChainedTailWeight};
  return m;
}

namespace {

void check_options(const OracleOptions& options) {
  if (options.users < 2) throw std::invalid_argument("evaluate_policies: users must be >= 2 (a variance needs two)");
  if (options.days < 1 || options.days > 60) throw std::invalid_argument("evaluate_policies: days must be in [1, 60]");
  if (!(options.gamma >= 0 && options.gamma <= 1)) throw std::invalid_argument("evaluate_policies: gamma must be in [0, 1]");
}

void check_policy(const Scenario& world, const std::string& name, const PolicyPtr& p) {
  if (!p || p->action_dim() != world.action_dim())
    throw std::invalid_argument("evaluate_policies: policy " + name + " does not act in the scenario's " +
                                std::to_string(world.action_dim()) + " action dimensions");
}

OracleUserValues run_policy(const Scenario& world, const std::string& name, const PolicyPtr& policy,
                            const OracleOptions& options) {
  Scenario sc = world;
  sc.population.size = options.users;
  sc.days = options.days;
  GroupSpec g;
  g.name = "evaluate";  // the same group for every policy: only the policy differs
  sc.groups = {g};
  const std::uint64_t user_seed = options.user_seed ? options.user_seed : world.seed;
  Simulator sim(sc, {policy}, user_seed, UserSharding{options.cluster});  // each rank holds its users
  sim.track_user_totals(true);
  sim.set_return_gamma(options.gamma);
  RunOptions ro;
  ro.threads = options.threads;
  ro.cluster = options.cluster;
  const RunResult res = sim.run_days(options.days, ro, nullptr);
  const ArmValues a = arm_values(sim.user_totals(), sim.group_assignment(), 0, options.days);
  OracleUserValues out;
  OraclePolicyValue& v = out.value;
  v.name = name;
  v.requests = res.requests;
  v.sessions = res.sessions;
  v.sessions_capped = res.sessions_capped;
  v.wall_seconds = res.wall_seconds;
  const double t = stats::student_t_quantile(0.975, static_cast<double>(a.users - 1));
  for (const std::string& m : oracle_metrics()) {
    Linear l = linearise(a, m);
    const double hw = l.z.empty() ? kNaN : t * std::sqrt(variance(l.z) / static_cast<double>(a.users));
    v.metrics.push_back(OracleEstimate{m, l.level, hw});
    out.level.push_back(l.level);
    out.per_user.push_back(std::move(l.z));
  }
  return out;
}

}  // namespace

OracleUserValues evaluate_policy(const Scenario& world, const std::string& name, const PolicyPtr& policy,
                                 const OracleOptions& options) {
  check_options(options);
  check_policy(world, name, policy);
  return run_policy(world, name, policy, options);
}

OracleDifference paired_difference(const OracleUserValues& t, const OracleUserValues& c, std::size_t m) {
  if (m >= oracle_metrics().size() || m >= t.per_user.size() || m >= c.per_user.size())
    throw std::invalid_argument("paired_difference: metric index out of range");
  OracleDifference d;
  d.policy = t.value.name;
  d.reference = c.value.name;
  d.metric = oracle_metrics()[m];
  const std::vector<double>& cz = c.per_user[m];
  const std::vector<double>& tz = t.per_user[m];
  if (cz.empty() || tz.empty()) {
    d.difference = d.half_width = d.relative_percent = d.unpaired_half_width = d.variance_reduction = kNaN;
    return d;
  }
  if (cz.size() != tz.size())
    throw std::invalid_argument("paired_difference: " + d.policy + " and " + d.reference +
                                " were evaluated on different users");
  const double n = static_cast<double>(cz.size());
  const double t_paired = stats::student_t_quantile(0.975, n - 1),
               t_unpaired = stats::student_t_quantile(0.975, 2 * n - 2);
  std::vector<double> diff(cz.size());
  for (std::size_t u = 0; u < diff.size(); ++u) diff[u] = tz[u] - cz[u];
  // Means: mean(d) (exactly 0 for identical runs); ratios: R_t - R_c (mean(d) is 0 by construction).
  d.difference = is_ratio(d.metric) ? t.level[m] - c.level[m] : stats::summarise(diff).mean;
  const double v_paired = variance(diff);
  const double v_unpaired = variance(cz) + variance(tz);
  d.half_width = t_paired * std::sqrt(v_paired / n);
  d.unpaired_half_width = t_unpaired * std::sqrt(v_unpaired / n);
  d.relative_percent = c.level[m] != 0 ? 100.0 * d.difference / c.level[m] : kNaN;
  d.variance_reduction = v_paired > 0 ? v_unpaired / v_paired
                                      : (v_unpaired > 0 ? std::numeric_limits<double>::infinity() : kNaN);
  return d;
}

OracleResult evaluate_policies(const Scenario& world,
                               const std::vector<std::pair<std::string, PolicyPtr>>& policies,
                               const OracleOptions& options) {
  if (policies.empty()) throw std::invalid_argument("evaluate_policies: no policies (give at least one)");
  check_options(options);
  for (const auto& [k, ref] : options.pairs)
    if (k >= policies.size() || ref >= policies.size() || k == ref)
      throw std::invalid_argument("evaluate_policies: a pair of policies out of range or a policy against itself");
  for (const auto& [name, p] : policies) check_policy(world, name, p);

  OracleResult r;
  r.scenario = world.name;
  r.users = options.users;
  r.days = options.days;
  r.user_seed = options.user_seed ? options.user_seed : world.seed;
  r.gamma = options.gamma;
  std::vector<OracleUserValues> values;
  for (const auto& [name, p] : policies) {
    values.push_back(run_policy(world, name, p, options));
    r.policies.push_back(values.back().value);
  }
  const auto compare = [&](std::size_t k, std::size_t ref) {
    for (std::size_t m = 0; m < oracle_metrics().size(); ++m)
      r.differences.push_back(paired_difference(values[k], values[ref], m));
  };
  for (std::size_t k = 1; k < policies.size(); ++k) compare(k, 0);
  for (const auto& [k, ref] : options.pairs) compare(k, ref);
  return r;
}

std::string oracle_markdown(const OracleResult& r) {
  std::ostringstream o;
  o << "## Oracle: " << r.scenario << ", " << r.users << " users x " << r.days << " days, user seed " << r.user_seed
    << " (the same users for every policy); " << user_metric::kDiscountedReturn << " and "
    << user_metric::kChainedReturn << ", " << user_metric::kChainedSessionReturn << " at gamma " << fmt(r.gamma, 3)
    << "\n\n";
  o << "| policy |";
  for (const std::string& m : oracle_metrics()) o << " " << m << " |";
  o << " requests | wall s |\n|---|";
  for (std::size_t i = 0; i < oracle_metrics().size(); ++i) o << "---|";
  o << "---|---|\n";
  for (const OraclePolicyValue& p : r.policies) {
    o << "| " << p.name << " |";
    for (const OracleEstimate& e : p.metrics) o << " " << fmt(e.value) << " +- " << fmt(e.half_width, 2) << " |";
    o << " " << p.requests << " | " << fmt(p.wall_seconds, 3) << " |\n";
  }
  if (r.differences.empty()) return o.str();
  o << "\nPaired differences against " << r.policies.front().name
    << " (per-user differences, 95% t interval; unpaired: the same values as independent groups)\n\n"
    << "| policy | metric | difference | 95% CI | relative | paired +- | unpaired +- | variance reduction |\n"
    << "|---|---|---|---|---|---|---|---|\n";
  for (const OracleDifference& d : r.differences)
    o << "| " << d.policy << " | " << d.metric << " | " << fmt(d.difference) << " | [" << fmt(d.difference - d.half_width)
      << ", " << fmt(d.difference + d.half_width) << "] | " << fmt(d.relative_percent, 3) << "% | "
      << fmt(d.half_width, 3) << " | " << fmt(d.unpaired_half_width, 3) << " | " << fmt(d.variance_reduction, 3)
      << "x |\n";
  return o.str();
}

json oracle_json(const OracleResult& r) {
  json j = {{"scenario", r.scenario}, {"users", r.users}, {"days", r.days}, {"user_seed", r.user_seed}, {"gamma", r.gamma}};
  j["policies"] = json::array();
  for (const OraclePolicyValue& p : r.policies) {
    json m = json::object();
    for (const OracleEstimate& e : p.metrics)
      m[e.metric] = {{"value", number(e.value)}, {"half_width", number(e.half_width)}};
    j["policies"].push_back({{"name", p.name}, {"metrics", m}, {"requests", p.requests}, {"sessions", p.sessions},
                             {"sessions_capped", p.sessions_capped}, {"wall_seconds", p.wall_seconds}});
  }
  j["differences"] = json::array();
  for (const OracleDifference& d : r.differences)
    j["differences"].push_back({{"policy", d.policy}, {"reference", d.reference}, {"metric", d.metric},
                                {"difference", number(d.difference)}, {"half_width", number(d.half_width)},
                                {"ci_low", number(d.difference - d.half_width)},
                                {"ci_high", number(d.difference + d.half_width)},
                                {"relative_percent", number(d.relative_percent)},
                                {"unpaired_half_width", number(d.unpaired_half_width)},
                                {"variance_reduction", number(d.variance_reduction)}});
  return j;
}

}  // namespace mtf::experiments
