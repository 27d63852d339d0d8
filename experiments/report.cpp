// Markdown reports and regression bands (see report.h).
#include "experiments/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agents/curves.h"
#include "core/atomic_file.h"
#include "experiments/experiment.h"
#include "experiments/metric_keys.h"
#include "experiments/report_rows.h"
#include "metrics/stats.h"
#include "sim/scenario.h"

namespace mtf::experiments {
namespace {

using nlohmann::json;

std::string fmt(double x, int digits = 4) {
  if (!std::isfinite(x)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, x);
  return b;
}
std::string pct(double x, int digits = 2) {
  if (!std::isfinite(x)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, "%+.*f%%", digits, 100 * x);
  return b;
}
/// An optional figure (an interval's end), NaN (shown as n/a) when absent.
double or_nan(const std::optional<double>& x) { return x.value_or(std::nan("")); }
/// The value of a figure, NaN when the row is absent.
double value_of(const MetricRow* r) { return r ? r->value : std::nan(""); }

/// A detail as JSON text (numbers as written), "n/a" when missing.
std::string detail_shown(const json& d, const char* key) {
  const auto it = d.find(key);
  return it != d.end() ? it->dump() : std::string("n/a");
}

std::string marks(const std::optional<double>& p) {
  if (!p) return "";
  return *p < 0.01 ? "**" : *p < 0.05 ? "*" : "";
}

using Index = MetricIndex;

/// Each agent's learning curve (section curve) as a table at up to nine
/// steps, log-spaced over its recorded points (and the last).
void learning_curves(std::ostringstream& o, const Index& ix) {
  o << "## Learning curves\n\nAt log-spaced steps of each agent's training: the losses of that step, and its "
       "policy on a fixed probe of its dataset: mean Q of its own action, the share of its actions outside the "
       "logged exploration bounds, and the mean distance to the logged baseline action (docs/experiments.md). "
       "With a convergence block, the oracle's true value at checkpoints follows (\"Convergence\").\n\n";
  for (const std::string& agent : ix.subjects(keys::kCurve)) {
    std::vector<std::int64_t> steps;
    std::vector<std::string> metrics;
    for (const MetricRow* r : ix.rows) {
      if (r->section != keys::kCurve || r->subject != agent || !r->rep) continue;
      if (r->metric == keys::kOracleReward || r->metric == keys::kOracleVsBaseline) continue;  // "Convergence"
      if (steps.empty() || steps.back() != *r->rep) steps.push_back(*r->rep);
      if (std::find(metrics.begin(), metrics.end(), r->metric) == metrics.end()) metrics.push_back(r->metric);
    }
    if (steps.empty()) continue;
    const std::vector<std::size_t> shown = agents::log_spaced_indices(steps.size());
    o << "### " << agent << "\n\n| step |";
    for (const std::string& m : metrics) o << " " << m << " |";
    o << "\n|---|";
    for (std::size_t i = 0; i < metrics.size(); ++i) o << "---|";
    o << "\n";
    for (std::size_t i : shown) {
      o << "| " << steps[i] << " |";
      for (const std::string& m : metrics) {
        const MetricRow* r = ix.find(keys::kCurve, agent, m, steps[i]);
        o << " " << (r && std::isfinite(r->value) ? fmt(r->value, 4) : "n/a") << " |";
      }
      o << "\n";
    }
    o << "\n";
  }
}

/// The off-policy estimators' fits (section ope_curve): each method's estimate
/// of each policy at up to seven log-spaced steps of its fit.
void ope_curves(std::ostringstream& o, const Index& ix) {
  o << "## Off-policy estimators' fits\n\nThe estimate each fit (FQE, Conservative-OPE) would give if it stopped at "
       "that step, at log-spaced steps: a row still moving at its last steps had not converged.\n\n";
  std::vector<std::string> methods;
  for (const MetricRow* r : ix.rows) {
    if (r->section != keys::kOpeCurve) continue;
    const std::string& m = r->metric;
    const std::string suffix = keys::kEstimateSuffix;
    if (m.size() > suffix.size() && m.compare(m.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string method = m.substr(0, m.size() - suffix.size());
      if (std::find(methods.begin(), methods.end(), method) == methods.end()) methods.push_back(method);
    }
  }
  for (const std::string& method : methods) {
    const std::string metric = method + keys::kEstimateSuffix;
    std::vector<std::int64_t> steps;
    for (const MetricRow* r : ix.rows)
      if (r->section == keys::kOpeCurve && r->metric == metric && r->rep &&
          std::find(steps.begin(), steps.end(), *r->rep) == steps.end())
        steps.push_back(*r->rep);
    std::sort(steps.begin(), steps.end());
    if (steps.empty()) continue;
    const std::vector<std::size_t> shown = agents::log_spaced_indices(steps.size(), 7);
    o << "### " << method << "\n\n| policy |";
    for (std::size_t i : shown) o << " step " << steps[i] << " |";
    o << "\n|---|";
    for (std::size_t i = 0; i < shown.size(); ++i) o << "---|";
    o << "\n";
    for (const std::string& policy : ix.subjects(keys::kOpeCurve)) {
      if (!ix.find(keys::kOpeCurve, policy, metric)) continue;
      o << "| " << policy << " |";
      for (std::size_t i : shown) o << " " << fmt(value_of(ix.find(keys::kOpeCurve, policy, metric, steps[i])), 3) << " |";
      o << "\n";
    }
    o << "\n";
  }
}

/// The convergence checkpoints (curve/oracle/...) of each agent and the
/// verdict of the rule where its training stopped (training/converged).
void convergence_tables(std::ostringstream& o, const Index& ix) {
  o << "## Convergence\n\nEach agent's policy at doubling steps of its training, on the same fresh users with common "
       "random numbers: the oracle's reward per user-day with its 95% interval, and the paired difference with the "
       "baseline policy. The curve is flat when the last checkpoints of the window agree within their intervals "
       "or the tolerance (docs/experiments.md, \"Training until the curve is flat\"); the training stops there "
       "or at its step cap.\n\n";
  for (const std::string& agent : ix.subjects(keys::kCurve)) {
    std::vector<const MetricRow*> diffs;
    for (const MetricRow* r : ix.rows)
      if (r->section == keys::kCurve && r->subject == agent && r->metric == keys::kOracleVsBaseline && r->rep)
        diffs.push_back(r);
    if (diffs.empty()) continue;
    const MetricRow* c = ix.find(keys::kTraining, agent, keys::kConverged);
    const json d = details_of(c);
    o << "### " << agent << ": " << (c ? detail_text(d, keys::detail::kVerdict) : std::string("no verdict"))
      << " (window " << fmt(detail_number(d, keys::detail::kWindow), 0) << " from step "
      << fmt(detail_number(d, keys::detail::kMinStep, 0), 0) << ", tolerance "
      << fmt(detail_number(d, keys::detail::kTolerance), 3) << " reward/user-day)\n\n"
      << "| step | reward / user-day | 95% | vs baseline | paired 95% | relative |\n|---|---|---|---|---|---|\n";
    for (const MetricRow* r : diffs) {
      const MetricRow* level = ix.find(keys::kCurve, agent, keys::kOracleReward, r->rep);
      const double rel = detail_number(details_of(r), keys::detail::kRelativePercent);
      o << "| " << *r->rep << " | " << fmt(value_of(level), 3) << " | +-"
        << (level ? fmt(or_nan(level->ci_high) - level->value, 3) : "n/a") << " | " << fmt(r->value, 3) << " | +-"
        << fmt(or_nan(r->ci_high) - r->value, 3) << " | "
        << (std::isfinite(rel) ? fmt(rel, 2) + "%" : std::string("n/a")) << " |\n";
    }
    o << "\n";
  }
}

/// The oracle stage: true values on the same users, and the paired
/// differences against the baseline and against the behaviour policies.
void oracle_tables(std::ostringstream& o, const Index& ix) {
  std::vector<std::string> metrics;
  // The columns the run has (a database written before a metric existed lacks it).
  for (const char* m : {keys::kRewardPerUserDay, keys::kValidPerUserDay, keys::kWatchPerUserDay, keys::kDwellPerUserDay,
                        keys::kReturnRate, keys::kDiscountedReturn, keys::kChainedReturn, keys::kChainedSessionReturn})
    if (std::any_of(ix.rows.begin(), ix.rows.end(),
                    [&](const MetricRow* r) { return r->section == keys::kOracle && r->metric == m; }))
      metrics.emplace_back(m);
  std::optional<std::int64_t> users;
  for (const MetricRow* r : ix.rows)
    if (r->section == keys::kOracle && r->n) users = r->n;
  o << "## Oracle: true values on the same users\n\nEvery policy on the same " << (users ? std::to_string(*users) : "n/a")
    << " fresh users with common random numbers (docs/experiments.md, \"The oracle\"): values per user-day (the "
       "return rate: next-day returns per active day; the discounted return: per session, at the oracle block's gamma; the "
       "chained return per user: over the days, a user's requests chained across sessions at the same gamma; per session: "
       "the same from the first request of each session started on the first day, the cross-session formulation's "
       "value of a session start) with 95% intervals. `behaviour:GROUP` is the policy that "
       "logged an exploration group's data.\n\n| policy |";
  for (const std::string& m : metrics) o << " " << m << " |";
  o << "\n|---|";
  for (std::size_t i = 0; i < metrics.size(); ++i) o << "---|";
  o << "\n";
  for (const std::string& p : ix.subjects(keys::kOracle)) {
    if (p == keys::kAll) continue;
    o << "| " << p << " |";
    for (const std::string& m : metrics) {
      const MetricRow* r = ix.find(keys::kOracle, p, m);
      o << " " << (r ? fmt(r->value, 3) + " +- " + fmt(or_nan(r->ci_high) - r->value, 3) : std::string("n/a")) << " |";
    }
    o << "\n";
  }
  o << "\n";
  // The reference kinds: 0 the baseline, 1 a behaviour policy, 2 the policy
  // an "if_better" progressive group ended with, 3 the A/B's control (the
  // papers' ES or BO).
  const auto kind_of = [](const std::string& ref) {
    if (ref.rfind(keys::kBehaviourPrefix, 0) == 0) return 1;
    if (ref.rfind(keys::kDeployedPrefix, 0) == 0) return 2;
    if (ref.empty() || ref == keys::kBaseline) return 0;
    return 3;
  };
  for (const int kind : {0, 3, 1, 2}) {
    std::vector<std::string> subjects;
    for (const std::string& s : ix.subjects(keys::kOracleDiff)) {
      const MetricRow* any = nullptr;
      for (const std::string& m : metrics)
        if ((any = ix.find(keys::kOracleDiff, s, m))) break;
      if (kind_of(detail_text(details_of(any), keys::detail::kReference)) == kind) subjects.push_back(s);
    }
    if (subjects.empty()) continue;
    o << (kind == 1   ? "### Each agent against the behaviour policies that logged its data (paired)\n\n"
          : kind == 2 ? "### Each progressive agent against the policy its group ended with (paired; \"if_better\")\n\n"
          : kind == 3 ? "### Against the A/B's control, the papers' comparison (paired: the truth behind the A/B's lifts)\n\n"
                      : "### Against the baseline (paired)\n\n")
      << "Difference in reward per user-day (relative, 95% interval) and in the return rate; * the interval "
         "excludes 0.\n\n| policy vs reference | reward / user-day | relative | 95% interval | valid / user-day | return rate |\n"
         "|---|---|---|---|---|---|\n";
    for (const std::string& s : subjects) {
      const MetricRow* rw = ix.find(keys::kOracleDiff, s, keys::kRewardPerUserDay);
      const MetricRow* va = ix.find(keys::kOracleDiff, s, keys::kValidPerUserDay);
      const MetricRow* rr = ix.find(keys::kOracleDiff, s, keys::kReturnRate);
      const auto star = [](const MetricRow* r) {
        return r && r->ci_low && r->ci_high && (*r->ci_low > 0 || *r->ci_high < 0) ? "*" : "";
      };
      const double rel = detail_number(details_of(rw), keys::detail::kRelativePercent);
      o << "| " << s << " | " << (rw ? fmt(rw->value, 3) + star(rw) : "n/a") << " | "
        << (std::isfinite(rel) ? fmt(rel, 2) + "%" : "n/a") << " | ["
        << (rw ? fmt(or_nan(rw->ci_low), 3) : "n/a") << ", " << (rw ? fmt(or_nan(rw->ci_high), 3) : "n/a") << "] | "
        << (va ? fmt(va->value, 3) + star(va) : "n/a") << " | " << (rr ? fmt(rr->value, 4) + star(rr) : "n/a")
        << " |\n";
    }
    o << "\n";
  }
}

/// Progressive rounds with "accept": "if_better": per agent and round, both
/// estimates on the round's held-out users and the verdict.
void progressive_acceptance(std::ostringstream& o, const MetricIndex& ix) {
  o << "## Progressive rounds: was each new agent deployed?\n\nWith \"accept\": \"if_better\" a round's newly trained "
       "agent replaces the deployed baseline only when an off-policy estimate on the round's held-out users (never "
       "trained on) rates it higher; otherwise the group keeps exploring around the deployed policy "
       "(docs/experiments.md, \"Progressive rounds that keep the baseline\").\n\n"
       "| agent | round | estimator | new agent | deployed policy | held-out transitions | verdict |\n"
       "|---|---|---|---|---|---|---|\n";
  for (const MetricRow* r : ix.rows) {
    if (r->section != keys::kProgressive || r->metric != keys::kAccepted || !r->rep) continue;
    const MetricRow* c = ix.find(keys::kProgressive, r->subject, keys::kCandidateEstimate, r->rep);
    const MetricRow* d = ix.find(keys::kProgressive, r->subject, keys::kDeployedEstimate, r->rep);
    o << "| " << r->subject << " | " << *r->rep << " | " << detail_text(details_of(r), keys::detail::kMethod) << " | "
      << (c ? fmt(c->value, 4) : "n/a") << " | " << (d ? fmt(d->value, 4) : "n/a") << " | "
      << (r->n ? std::to_string(*r->n) : "n/a") << " | " << (r->value == 1.0 ? "deployed" : "kept the previous") << " |\n";
  }
  o << "\n";
}

/// The policies evaluated both offline and by the oracle, ranked best first by
/// the oracle's truth and by each offline metric: where a tau is low, which
/// policy each metric misplaces (BatchRL-MTF's Table 1 ranks TD3 below the
/// conservative agents; here that can be checked against the truth).
void ope_rankings(std::ostringstream& o, const MetricIndex& ix) {
  std::vector<std::string> policies;
  for (const std::string& p : ix.subjects(keys::kOffline))
    if (ix.find(keys::kOracle, p, keys::kRewardPerUserDay)) policies.push_back(p);
  if (policies.size() < 2) return;
  const auto ranking = [&](const char* section, const std::string& metric) {
    std::vector<std::pair<double, std::string>> v;
    for (const std::string& p : policies)
      if (const MetricRow* r = ix.find(section, p, metric); r && std::isfinite(r->value)) v.emplace_back(r->value, p);
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string out;
    for (const auto& [value, p] : v) out += (out.empty() ? "" : " > ") + p + " (" + fmt(value, 3) + ")";
    return out.empty() ? std::string("n/a") : out;
  };
  o << "Each ranking, best first, over the policies both stages evaluated.\n\n| ranked by | policies |\n|---|---|\n";
  for (const char* m : {keys::kRewardPerUserDay, keys::kDiscountedReturn})
    o << "| oracle " << m << " | " << ranking(keys::kOracle, m) << " |\n";
  std::vector<std::string> metrics;
  for (const MetricRow* r : ix.rows)
    if (r->section == keys::kOffline && std::find(metrics.begin(), metrics.end(), r->metric) == metrics.end())
      metrics.push_back(r->metric);
  for (const std::string& m : metrics) o << "| " << m << " | " << ranking(keys::kOffline, m) << " |\n";
  o << "\n";
}

/// The off-policy estimators against the oracle: each policy's truth and each
/// FQE-type estimate with its relative error, then Kendall tau per offline metric.
void ope_vs_oracle_tables(std::ostringstream& o, const Index& ix) {
  o << "## Off-policy estimators against the oracle\n\n";
  if (ix.any(keys::kOpeError)) {
    // One table per objective: the discounted return per session (datasets of
    // the session formulation), the chained return per session (cross-session).
    const auto oracle_metric_of = [](const MetricRow* r) {
      const std::string m = detail_text(details_of(r), keys::detail::kOracleMetric);
      return m.empty() ? std::string(keys::kDiscountedReturn) : m;
    };
    std::vector<std::string> objectives;
    for (const MetricRow* r : ix.rows)
      if (r->section == keys::kOpeError &&
          std::find(objectives.begin(), objectives.end(), oracle_metric_of(r)) == objectives.end())
        objectives.push_back(oracle_metric_of(r));
    for (const std::string& objective : objectives) {
      std::vector<std::string> methods;
      double gamma = std::nan("");
      for (const MetricRow* r : ix.rows)
        if (r->section == keys::kOpeError && oracle_metric_of(r) == objective) {
          if (std::find(methods.begin(), methods.end(), r->metric) == methods.end()) methods.push_back(r->metric);
          gamma = detail_number(details_of(r), keys::detail::kGamma);
        }
      const bool chained = objective == keys::kChainedSessionReturn;
      o << "Each estimate of the " << (chained ? "chained (cross-session) return per session" : "discounted return per session")
        << " (gamma " << fmt(gamma, 3) << ", the oracle's; oracle metric " << objective
        << ") beside the oracle's value of the same quantity on fresh users (95% interval), and its "
           "relative error (estimate - truth) / |truth|. The estimators see the held-out data's session-initial states, "
           "the oracle its own users' sessions: the same quantity over slightly different state distributions."
        << (chained ? " The oracle's chained return is over the sessions its users start on its first day and stops "
                      "at its last day, where the estimators' value runs on (bootstrapped over the data's time-outs); "
                      "\"cut off\" is the discount weight beyond the window per session, the mean of gamma^m (m the "
                      "requests from a session's start to the window's end): the truth falls short of the "
                      "untruncated value by about that share of it (more oracle days shrink it)."
                    : "")
        << "\n\n| policy | oracle |" << (chained ? " cut off |" : "");
      for (const auto& m : methods) o << " " << m << " | error |";
      o << "\n|---|---|" << (chained ? "---|" : "");
      for (std::size_t i = 0; i < methods.size(); ++i) o << "---|---|";
      o << "\n";
      for (const std::string& p : ix.subjects(keys::kOpeError)) {
        const MetricRow* any = nullptr;
        for (const auto& m : methods)
          if ((any = ix.find(keys::kOpeError, p, m))) break;
        if (!any) continue;
        const json d = details_of(any);
        o << "| " << p << " | " << fmt(detail_number(d, keys::detail::kTruth), 3) << " +- "
          << fmt(detail_number(d, keys::detail::kTruthHalfWidth), 3) << " |";
        if (chained) {
          const double tail = detail_number(d, keys::detail::kTruthTailWeight);
          o << " " << (std::isfinite(tail) ? fmt(100 * tail, 3) + "%" : std::string("n/a")) << " |";
        }
        for (const auto& m : methods) {
          const MetricRow* r = ix.find(keys::kOpeError, p, m);
          o << " " << (r ? fmt(detail_number(details_of(r), keys::detail::kEstimate), 3) : "n/a") << " | "
            << (r && std::isfinite(r->value) ? fmt(100 * r->value, 1) + "%" : "n/a") << " |";
        }
        o << "\n";
      }
      o << "\n";
    }
  } else if (ix.any(keys::kOffline) && std::any_of(ix.rows.begin(), ix.rows.end(), [](const MetricRow* r) {
               return r->section == keys::kOffline && (r->metric == keys::kFqe || r->metric == keys::kConservativeOpe);
             })) {
    o << "No relative errors: the estimators' objective is not the oracle's (another gamma, offline.ope.gamma "
         "against oracle.gamma, or an OPE dataset discounted by elapsed time).\n\n";
  }
  o << "Kendall tau between each offline metric and the oracle's truth over the policies both evaluated (1: the "
       "same order; -1: reversed). A metric that ranks policies by the discounted in-session return can still "
       "disagree with the reward per user-day, which also counts the sessions users come back for.\n\n"
       "| offline metric | oracle metric | Kendall tau | policies |\n|---|---|---|---|\n";
  for (const MetricRow* r : ix.rows)
    if (r->section == keys::kOpeVsOracle)
      o << "| " << r->subject << " | " << r->metric << " | " << fmt(r->value, 2) << " | "
        << detail_text(details_of(r), keys::detail::kPolicies) << " |\n";
  o << "\n";
  ope_rankings(o, ix);
}

/// The objective-alignment sweep: per objective its Kendall tau with the reward
/// per user-day and the headroom it sees.
void alignment_table(std::ostringstream& o, const Index& ix) {
  std::optional<std::int64_t> users, policies;
  for (const MetricRow* r : ix.rows) {
    if (r->section == keys::kAlignment && r->n) users = r->n;
    if (r->section == keys::kAlignmentTau && r->n) policies = r->n;
  }
  o << "## What the objective sees (objective alignment)\n\n" << (policies ? std::to_string(*policies) : "n/a")
    << " policies (the baseline, constant actions drawn uniformly on the action box, and the online learners' best "
       "policies when the protocol has learners), through the oracle on the same "
    << (users ? std::to_string(*users) : "n/a")
    << " users (docs/experiments.md, \"What the objective sees\"). For each objective an agent could maximise: its "
       "Kendall tau with the reward per user-day over the sweep, the sweep's best policy by that objective and "
       "what it gains in reward per user-day over the baseline, against the best gain in the sweep. An objective "
       "whose best policy gains less than the best sees only part of the headroom (an episode that ends with the "
       "session cannot see users coming back more often). discounted_return_per_session@GAMMA is the session "
       "formulation's objective (the papers'), chained_return_per_user@GAMMA the cross-session formulation's (a "
       "user's requests chained over sessions and days, discounted per request; at gamma 1 the window's whole "
       "reward).\n\n"
       "| objective | Kendall tau with reward / user-day | its best policy | reward / user-day vs baseline | best in the sweep |\n"
       "|---|---|---|---|---|\n";
  for (const MetricRow* r : ix.rows) {
    if (r->section != keys::kAlignmentTau) continue;
    const json d = details_of(r);
    o << "| " << r->subject << " | " << fmt(r->value, 2) << " | " << detail_text(d, keys::detail::kBestPolicy) << " | "
      << fmt(detail_number(d, keys::detail::kLiftPercent), 1) << "% | "
      << fmt(detail_number(d, keys::detail::kBestPossiblePercent), 1) << "% |\n";
  }
  o << "\n";
}

/// The paper's number for (table, column, row), parsed from "+1.39%" or 0.7836; NaN when absent.
double paper_number(const json& paper, const char* table, const std::string& column, const std::string& row,
                    std::string* text = nullptr) {
  if (!paper.contains(table) || !paper[table].contains(column) || !paper[table][column].contains(row))
    return std::nan("");
  const json& v = paper[table][column][row];
  if (v.is_number()) {
    if (text) *text = fmt(v.get<double>(), 4);
    return v.get<double>();
  }
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (text) *text = s;
    s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
    const bool percent = !s.empty() && s.back() == '%';
    if (percent) s.pop_back();
    try {
      return std::stod(s) / (percent ? 100.0 : 1.0);
    } catch (...) {
      return std::nan("");
    }
  }
  return std::nan("");
}

/// "A > B > C" ordering of the rows by value (descending).
std::string ordering(std::vector<std::pair<std::string, double>> v) {
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  for (const auto& [n, x] : v) out += (out.empty() ? "" : " > ") + n;
  return out;
}

/// A sentence comparing the testbed's ordering with the paper's over the rows both have.
std::string agreement_line(const std::string& what, const std::vector<std::pair<std::string, double>>& ours,
                           const std::vector<std::pair<std::string, double>>& paper) {
  std::vector<std::pair<std::string, double>> a, b;
  std::vector<double> x, y;
  for (const auto& [n, v] : ours)
    for (const auto& [m, w] : paper)
      if (n == m && std::isfinite(v) && std::isfinite(w)) {
        a.emplace_back(n, v);
        b.emplace_back(m, w);
        x.push_back(v);
        y.push_back(w);
      }
  if (x.size() < 2) return "- " + what + ": fewer than two rows with both numbers; no comparison.\n";
  const double tau = stats::kendall_tau_b(x, y);
  std::string verdict = tau > 0.999 ? "the same ordering as the paper"
                        : tau > 0.3 ? "partly the paper's ordering"
                        : tau < -0.3 ? "the reverse of the paper's ordering, broadly"
                                     : "no agreement with the paper's ordering";
  return "- " + what + ": Kendall tau " + fmt(tau, 2) + " against the paper (" + verdict + ").\n  Testbed: " +
         ordering(a) + ".\n  Paper: " + ordering(b) + ".\n";
}

}  // namespace

json details_of(const MetricRow* r) {
  if (!r || r->details.empty()) return json::object();
  json d = json::parse(r->details, nullptr, /*allow_exceptions=*/false);
  return d.is_object() ? d : json::object();
}
std::string detail_text(const json& d, const char* key) {
  const auto it = d.find(key);
  return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
}
double detail_number(const json& d, const char* key, double otherwise) {
  const auto it = d.find(key);
  return it != d.end() && it->is_number() ? it->get<double>() : otherwise;
}

ExperimentSpec stored_experiment(const RunContents& run, std::string& note) {
  // The experiment block as run_experiment read it; the agents are not built
  // again. A block that this build no longer accepts still gets its figures,
  // without the paper's numbers.
  const Scenario sc = parse_scenario(run.info.scenario_json, "run database");
  ExperimentSpec spec;
  if (!sc.experiment_json.empty()) try {
      spec = parse_experiment(sc, "run database", /*check_hyperparameters=*/false);
    } catch (const ExperimentError& e) {
      note = std::string("The experiment block of this run does not validate in this build (") + e.what() +
             "); the paper's numbers and the primary metric are left out.";
    }
  return spec;
}

std::string report_markdown(const std::filesystem::path& run_db, bool allow_partial) {
  return report_markdown(read_run(run_db, /*with_transitions=*/false, /*with_rows=*/false, allow_partial));
}

std::string report_markdown(const RunContents& run) {
  const bool unfinished = run.finished_at.empty();
  if (run.metrics.empty() && unfinished)  // read with allow_partial: say how far it got
    return "# " + run.info.scenario_name + ": experiment report\n\nThe run did not finish (started " +
           run.started_at + ") and wrote no figure yet: it stopped inside its exploration.\n";
  if (run.metrics.empty())
    throw ExperimentError(run.info.scenario_name +
                          ": the run database has no experiment metrics (run a scenario with an \"experiment\" block)");
  std::string note;
  const ExperimentSpec spec = stored_experiment(run, note);
  return (note.empty() ? note : note + "\n\n") + report_markdown(run, spec);
}

std::string report_markdown(const RunContents& run, const ExperimentSpec& spec) {
  if (run.metrics.empty())
    throw ExperimentError(run.info.scenario_name +
                          ": the run database has no experiment metrics (run a scenario with an \"experiment\" block)");
  const Index ix(run.metrics);
  const json& paper = spec.paper;
  const std::string primary = spec.ab ? spec.ab->primary : std::string();
  const std::string source = paper.is_object() && !detail_text(paper, "source").empty() ? detail_text(paper, "source")
                                                                                       : std::string("the paper");
  std::ostringstream o;
  o << "# " << run.info.scenario_name << ": experiment report\n\n";
  if (run.finished_at.empty())
    o << "**This run did not finish** (started " << run.started_at
      << "): the tables below hold only the stages it completed.\n\n";
  o << "Code " << run.info.code_version << ", seed " << run.info.seed << ", " << run.info.threads
    << (run.info.threads == 1 ? " thread" : " threads");
  if (const MetricRow* r = ix.find(keys::kRun, keys::kAll, keys::kRanks); r && r->value > 1)
    o << " in each of " << fmt(r->value, 0) << " MPI ranks";
  if (ix.find(keys::kRun, keys::kAll, keys::kDataParallel)) {
    o << ", each rank holding its users' rows and the agents trained and evaluated offline data-parallel over the "
         "ranks (those figures depend on the rank count; the simulation does not";
    const MetricRow* most = ix.find(keys::kExploration, keys::kAll, keys::kTransitionsLargestShard);
    const MetricRow* all = ix.find(keys::kExploration, keys::kAll, keys::kTransitions);
    if (most && all) o << "; the largest rank held " << fmt(most->value, 0) << " of the " << fmt(all->value, 0) << " transitions";
    o << ")";
  } else {
    o << " (results do not depend on it)";
  }
  if (const MetricRow* w = ix.find(keys::kRun, keys::kAll, keys::kWallSeconds))
    o << ", " << fmt(w->value / 60, 1) << " min";
  o << ". Paper numbers: " << source << ". Significance: * p < 0.05, ** p < 0.01 (Welch t-test for per-user means, "
    << "z-test of the delta-method difference for ratios); intervals are 95%, delta method on user-level means.\n\n";
  if (const MetricRow* c = ix.find(keys::kRun, keys::kAll, keys::kSessionsCapped); c && c->value > 0)
    o << "**" << fmt(c->value, 0) << " sessions were ended by the scenario's limits** (a runaway user model: "
      << "see docs/scenario-format.md#limits); the figures below include them.\n\n";

  // Exploration.
  if (ix.any(keys::kExplorationLevel)) {
    o << "## Exploration: what each group cost its users\n\n";
    o << "Per-user figures over the exploration days; lifts against the control group.\n\n";
    o << "| group | policy | valid / user-day | duration (s) / user-day | dwell (s) / user-day | reward / user-day | return rate |\n";
    o << "|---|---|---|---|---|---|---|\n";
    for (const std::string& g : ix.subjects(keys::kExplorationLevel)) {
      std::string policy;
      for (const auto& gr : run.groups)
        if (gr.name == g) policy = gr.policy;
      o << "| " << g << " | " << policy;
      for (const char* m : {keys::kValidPerUserDay, keys::kWatchPerUserDay, keys::kDwellPerUserDay,
                            keys::kRewardPerUserDay, keys::kReturnRate}) {
        const MetricRow* lv = ix.find(keys::kExplorationLevel, g, m);
        const MetricRow* l = ix.find(keys::kExploration, g, m);
        o << " | " << (lv ? fmt(lv->value, 3) : "n/a");
        if (l) o << " (" << pct(l->value) << marks(l->p_value) << ")";
      }
      o << " |\n";
    }
    o << "\n";
  }
  if (ix.any(keys::kDensity)) {
    const MetricRow* g = ix.find(keys::kDensity, keys::kGaussian, keys::kShareNearBaseline);
    const MetricRow* u = ix.find(keys::kDensity, keys::kBoundedUniform, keys::kShareNearBaseline);
    const MetricRow* m = ix.find(keys::kDensity, keys::kRatio, keys::kMeasured);
    const MetricRow* a = ix.find(keys::kDensity, keys::kRatio, keys::kAnalytic);
    const MetricRow* l2 = ix.find(keys::kDensity, keys::kRatio, keys::kLog2Analytic);
    o << "## Exploration density near the baseline (IntegratedRL-MTF section 4.5.2)\n\n";
    if (g && u && m && a && l2) {
      const json d = details_of(g);
      o << "Share of exploration actions within +-" << detail_shown(d, keys::detail::kRadius) << " of the baseline action in every one of the "
        << detail_shown(d, keys::detail::kDims) << " dimensions (at the mean recorded baseline action; 10^6 draws each): Gaussian sigma "
        << detail_shown(d, keys::detail::kSigma) << " " << fmt(g->value, 5) << ", bounded uniform +-" << detail_shown(d, keys::detail::kBound) << " " << fmt(u->value, 5)
        << ". Ratio measured " << fmt(m->value, 1) << ", analytic " << fmt(a->value, 1) << " = 2^" << fmt(l2->value, 2)
        << "; the paper states about 2^10.\n\n";
    }
  }
  if (ix.any(keys::kTraining)) {
    o << "## Training\n\nCurve: the convergence rule's verdict where the training stopped (\"Convergence\"), or "
         "\"not checked\" without a convergence block.\n\n| agent | type | dataset | transitions | steps | seconds | curve |\n"
         "|---|---|---|---|---|---|---|\n";
    for (const std::string& a : ix.subjects(keys::kTraining)) {
      const MetricRow* s = ix.find(keys::kTraining, a, keys::kSeconds);
      const json d = details_of(s);
      o << "| " << a << " | " << detail_text(d, keys::detail::kType) << " | " << detail_text(d, keys::detail::kDataset) << " | "
        << fmt(value_of(ix.find(keys::kTraining, a, keys::kTransitions)), 0) << " | "
        << fmt(value_of(ix.find(keys::kTraining, a, keys::kSteps)), 0) << " | "
        << (s ? fmt(s->value, 1) : "n/a") << " | ";
      const MetricRow* c = ix.find(keys::kTraining, a, keys::kConverged);
      o << (c ? detail_text(details_of(c), keys::detail::kVerdict) : std::string("not checked")) << " |\n";
    }
    o << "\n";
  }
  if (!run.agents.empty()) {
    o << "## Kept agents\n\nThe run database keeps these agents (table agents): evaluate one with `mtfsim evaluate "
         "SCENARIO.json --policy RUN.sqlite:NAME`, deploy it in a scenario group with `\"policy\": {\"type\": "
         "\"agent\", \"path\": \"RUN.sqlite\", \"name\": \"NAME\"}`, or train it further with `mtfsim train "
         "RUN.sqlite --from RUN.sqlite:NAME`.\n\n| name | type | steps | source | bytes |\n|---|---|---|---|---|\n";
    for (const AgentRow& a : run.agents)
      o << "| " << a.name << " | " << a.type << " | " << a.steps << " | " << a.source << " | " << a.bytes << " |\n";
    o << "\n";
  }
  if (ix.any(keys::kCurve)) learning_curves(o, ix);
  if (std::any_of(ix.rows.begin(), ix.rows.end(), [](const MetricRow* r) {
        return r->section == keys::kCurve && r->metric == keys::kOracleVsBaseline;
      }))
    convergence_tables(o, ix);
  if (ix.any(keys::kOnlineLearning)) {
    o << "## Online learners\n\n| learner | rounds | user-days spent | first round mean reward / user-day | last round | seconds |\n|---|---|---|---|---|---|\n";
    for (const std::string& l : ix.subjects(keys::kOnlineLearning)) {
      std::vector<const MetricRow*> rounds;
      for (const MetricRow* r : ix.rows)
        if (r->section == keys::kOnlineLearning && r->subject == l &&
            r->metric == keys::kMeanCandidateReward)
          rounds.push_back(r);
      const MetricRow* ud = ix.find(keys::kOnlineLearning, l, keys::kUserDays);
      const MetricRow* sec = ix.find(keys::kOnlineLearning, l, keys::kSeconds);
      o << "| " << l << " | " << rounds.size() << " | " << (ud ? fmt(ud->value, 0) : "n/a") << " | "
        << (rounds.empty() ? "n/a" : fmt(rounds.front()->value, 3)) << " | "
        << (rounds.empty() ? "n/a" : fmt(rounds.back()->value, 3)) << " | " << (sec ? fmt(sec->value, 1) : "n/a") << " |\n";
    }
    o << "\n";
  }

  if (std::any_of(ix.rows.begin(), ix.rows.end(),
                  [](const MetricRow* r) { return r->section == keys::kProgressive && r->metric == keys::kAccepted; }))
    progressive_acceptance(o, ix);
  if (ix.any(keys::kOpeCurve)) ope_curves(o, ix);
  // Offline table.
  std::vector<std::string> agreement;
  if (ix.any(keys::kOffline)) {
    o << "## Offline evaluation (Table 1)\n\n";
    std::vector<std::string> methods;
    for (const MetricRow* r : ix.rows)
      if (r->section == keys::kOffline &&
          std::find(methods.begin(), methods.end(), r->metric) == methods.end())
        methods.push_back(r->metric);
    o << "| policy |";
    for (const auto& m : methods) o << " " << m << " | paper |";
    o << "\n|---|";
    for (std::size_t i = 0; i < methods.size(); ++i) o << "---|---|";
    o << "\n";
    std::map<std::string, std::vector<std::pair<std::string, double>>> ours, theirs;
    for (const std::string& p : ix.subjects(keys::kOffline)) {
      o << "| " << p << " |";
      for (const auto& m : methods) {
        const MetricRow* r = ix.find(keys::kOffline, p, m);
        std::string text;
        const double pn = paper_number(paper, "offline", m, p, &text);
        o << " " << (r ? fmt(r->value, 4) : "n/a") << " | " << (text.empty() ? "-" : text) << " |";
        if (r) ours[m].emplace_back(p, r->value);
        if (std::isfinite(pn)) theirs[m].emplace_back(p, pn);
      }
      o << "\n";
    }
    o << "\n";
    for (const auto& m : methods)
      if (!theirs[m].empty()) agreement.push_back(agreement_line("Offline " + m, ours[m], theirs[m]));
  }

  if (ix.any(keys::kOracle)) oracle_tables(o, ix);
  if (ix.any(keys::kOpeVsOracle)) ope_vs_oracle_tables(o, ix);
  if (ix.any(keys::kAlignmentTau)) alignment_table(o, ix);

  // Online A/B table.
  if (ix.any(keys::kAbLevel)) {
    std::int64_t reps = 0;
    for (const MetricRow* r : ix.rows)
      if (r->section == keys::kAb && r->rep) reps = std::max(reps, *r->rep + 1);
    o << "## Online A/B test (Table 2)\n\n";
    o << reps << " replicates (independent user samples of the same world). ";
    const auto& ms = ab_metrics();
    // Columns: the metrics the paper reports, the primary metric, reward and return rate.
    std::vector<const AbMetric*> cols;
    for (const AbMetric& m : ms) {
      const bool in_paper = paper.contains("online") && paper["online"].contains(m.name);
      if (in_paper || m.name == primary || std::string(m.name) == keys::kRewardPerUserDay ||
          std::string(m.name) == keys::kReturnRate)
        cols.push_back(&m);
    }
    const std::vector<std::string> arms = ix.subjects(keys::kAbLevel);
    std::string control;
    for (const std::string& arm : arms)
      if (!ix.find(keys::kAb, arm, cols[0]->name)) control = arm;
    o << "Control arm: " << control << " (";
    for (std::size_t c = 0; c < cols.size(); ++c) {
      const MetricRow* lv = ix.find(keys::kAbLevel, control, cols[c]->name);
      o << (c ? ", " : "") << cols[c]->label << " " << (lv ? fmt(lv->value, 4) : "n/a");
    }
    o << "). Each cell: replicate 0's lift [95% CI] with significance marks, then the mean lift over replicates "
         "(standard deviation); the paper's number follows in its own column. Every metric of every arm, the "
         "arms' own values and the CUPED-adjusted lifts are in table `metrics` (sections ab, ab_level, "
         "ab_cuped, ab_summary).\n\n";
    o << "| arm |";
    for (const AbMetric* m : cols) o << " " << m->label << " | paper |";
    o << "\n|---|";
    for (std::size_t c = 0; c < cols.size(); ++c) o << "---|---|";
    o << "\n";
    std::map<std::string, std::vector<std::pair<std::string, double>>> ours, theirs;
    for (const std::string& arm : arms) {
      o << "| " << arm << " |";
      for (const AbMetric* m : cols) {
        const MetricRow* l = ix.find(keys::kAb, arm, m->name, 0);
        const MetricRow* s = ix.find(keys::kAbSummary, arm, m->name);
        std::string text;
        const double pn = paper_number(paper, "online", m->name, arm, &text);
        o << " ";
        if (arm == control) {
          o << "control";
        } else if (l) {
          o << pct(l->value) << marks(l->p_value) << " [" << pct(or_nan(l->ci_low)) << ", " << pct(or_nan(l->ci_high)) << "]";
          if (s) {
            const json d = details_of(s);
            o << "; " << pct(s->value) << " (" << fmt(100 * detail_number(d, keys::detail::kSd), 2) << ")";
          }
        } else {
          o << "n/a";
        }
        o << " | " << (arm == control && paper.contains("online") && paper["online"].contains(m->name) ? "*" : text.empty() ? "-" : text) << " |";
        const double mine = s ? s->value : (l ? l->value : 0.0);
        ours[m->name].emplace_back(arm, mine);
        if (std::isfinite(pn)) theirs[m->name].emplace_back(arm, pn);
        else if (arm == control && paper.contains("online") && paper["online"].contains(m->name))
          theirs[m->name].emplace_back(arm, 0.0);
      }
      o << "\n";
    }
    o << "\n";
    for (const AbMetric& m : ms)
      if (theirs[m.name].size() >= 2) agreement.push_back(agreement_line(std::string("Online ") + m.label, ours[m.name], theirs[m.name]));
  }

  if (ix.any(keys::kAbCuped)) {
    o << "### CUPED on the primary metric (" << primary
      << "; the pre-period's value as covariate), replicate 0\n\n| arm | lift [95% CI] | variance "
         "reduction |\n|---|---|---|\n";
    for (const MetricRow* r : ix.rows) {
      if (r->section != keys::kAbCuped || r->rep != 0 || r->metric != primary) continue;
      const json d = details_of(r);
      o << "| " << r->subject << " | " << pct(r->value) << marks(r->p_value) << " ["
        << pct(or_nan(r->ci_low)) << ", " << pct(or_nan(r->ci_high)) << "] | " << fmt(100 * detail_number(d, keys::detail::kVarianceReduction), 1)
        << "% |\n";
    }
    o << "\n";
  }

  if (ix.any(keys::kAgreement)) {
    o << "## Ground truth: offline metrics against the online lifts\n\n";
    // Per policy: every offline estimate next to its mean online lifts.
    std::vector<std::string> offline_metrics, online_metrics;
    for (const MetricRow* r : ix.rows) {
      if (r->section != keys::kAgreement) continue;
      if (std::find(offline_metrics.begin(), offline_metrics.end(), r->subject) == offline_metrics.end())
        offline_metrics.push_back(r->subject);
      if (std::find(online_metrics.begin(), online_metrics.end(), r->metric) == online_metrics.end())
        online_metrics.push_back(r->metric);
    }
    o << "| policy |";
    for (const auto& m : offline_metrics) o << " " << m << " |";
    for (const auto& m : online_metrics) o << " online " << m << " (mean lift) |";
    o << "\n|---|";
    for (std::size_t i = 0; i < offline_metrics.size() + online_metrics.size(); ++i) o << "---|";
    o << "\n";
    for (const std::string& arm : ix.subjects(keys::kAbLevel)) {
      o << "| " << arm << " |";
      for (const auto& m : offline_metrics) {
        const MetricRow* r = ix.find(keys::kOffline, arm, m);
        o << " " << (r ? fmt(r->value, 4) : "n/a") << " |";
      }
      for (const auto& m : online_metrics) {
        const MetricRow* r = ix.find(keys::kAbSummary, arm, m);
        o << " " << (r ? pct(r->value) : "0 (control)") << " |";
      }
      o << "\n";
    }
    o << "\n";
    o << "Kendall tau between each offline estimate and the policies' mean online lift (A/B arms that were also "
         "evaluated offline; the control arm counts with lift 0). No paper could measure this: here the online truth "
         "is known.\n\n| offline metric | online metric | Kendall tau | policies |\n|---|---|---|---|\n";
    for (const MetricRow* r : ix.rows)
      if (r->section == keys::kAgreement) {
        const json d = details_of(r);
        o << "| " << r->subject << " | " << r->metric << " | " << fmt(r->value, 2) << " | " << detail_text(d, keys::detail::kPolicies)
          << " |\n";
      }
    o << "\n";
  }
  if (!agreement.empty()) {
    o << "## Where the testbed agrees with the paper\n\n";
    for (const auto& a : agreement) o << a;
    o << "\nThe simulator is not tuned toward the papers' numbers: these orderings are what its mechanisms give.\n\n";
  }
  if (const std::string notes = paper.is_object() ? detail_text(paper, "notes") : ""; !notes.empty())
    o << "## Notes\n\n" << notes << "\n";
  return o.str();
}

// ---------------------------------------------------------------------------
// Regression bands
// ---------------------------------------------------------------------------

std::vector<Tracked> tracked_figures(const RunContents& run) {
  std::vector<Tracked> out;
  for (const MetricRow& r : run.metrics) {
    if (!std::isfinite(r.value)) continue;
    double half = 0;
    if (r.section == keys::kOffline) {
      // An importance-sampling estimate whose weights rest on a handful of
      // transitions is whatever those few weigh: it moves with the last bit
      // of the agent's numerics (BatchRL-MTF-RE's NCIS on heldout_noise, at
      // an effective sample size of 2, is 5.98 on one CPU and 5.27 on
      // another). Such a figure is not tracked.
      const json est = details_of(&r).value(keys::detail::kEstimator, json::object());
      if (est.is_object() && detail_number(est, keys::detail::kEss, kMinTrackedEss) < kMinTrackedEss) continue;
      // Estimates of a trained agent move with any change to its numerics; the band
      // is wide enough for that, narrow enough to catch a broken agent.
      half = std::max(0.05 * std::fabs(r.value), r.metric == keys::kWeightedGauc ? 0.015 : 0.1);
    } else if (r.section == keys::kAbSummary) {
      const double sd = detail_number(details_of(&r), keys::detail::kSd, 0.0);
      half = std::max({0.02, 3.0 * (std::isfinite(sd) ? sd : 0.0)});
    } else if (r.section == keys::kAb && r.rep == 0 && r.ci_low && r.ci_high) {
      half = std::max(0.02, 1.5 * (*r.ci_high - *r.ci_low) / 2);
    } else {
      continue;
    }
    std::string key = r.section + "/" + r.subject + "/" + r.metric;
    out.push_back({key, r.value, half});
  }
  return out;
}

void write_baseline(const std::filesystem::path& file, const RunContents& run) {
  json j = json::object();
  for (const Tracked& t : tracked_figures(run))
    j[t.key] = {{"value", t.value}, {"lo", t.value - t.half_width}, {"hi", t.value + t.half_width}};
  json doc = {{"scenario", run.info.scenario_name},
              {"code_version", run.info.code_version},
              {"note", "written by mtfsim regress --update; each figure must stay within [lo, hi]"},
              {"figures", j}};
  write_file_atomically(file, doc.dump(2) + "\n");
}

std::vector<BandCheck> check_baseline(const std::filesystem::path& file, const RunContents& run) {
  std::ifstream f(file);
  if (!f)
    throw std::runtime_error(file.string() + ": cannot read the baseline file; create it with mtfsim regress "
                                             "SCENARIO --baseline FILE --update");
  json doc;
  try {
    doc = json::parse(f);
  } catch (const json::exception& e) {
    throw std::runtime_error(file.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!doc.contains("figures") || !doc["figures"].is_object())
    throw std::runtime_error(file.string() + ": no \"figures\" object; rewrite it with --update");
  std::map<std::string, double> now;
  for (const Tracked& t : tracked_figures(run)) now[t.key] = t.value;
  std::vector<BandCheck> out;
  for (auto it = doc["figures"].begin(); it != doc["figures"].end(); ++it) {
    BandCheck c;
    c.key = it.key();
    if (!it.value().is_object() || !it.value().contains("lo") || !it.value().contains("hi") ||
        !it.value()["lo"].is_number() || !it.value()["hi"].is_number())
      throw std::runtime_error(file.string() + ": figures." + it.key() + " needs lo and hi (numbers)");
    c.lo = it.value()["lo"].get<double>();
    c.hi = it.value()["hi"].get<double>();
    const auto n = now.find(c.key);
    if (n == now.end()) {
      c.missing = true;
      c.inside = false;
      c.value = std::nan("");
    } else {
      c.value = n->second;
      c.inside = c.value >= c.lo && c.value <= c.hi;
    }
    out.push_back(c);
  }
  return out;
}

std::string format_checks(const std::vector<BandCheck>& checks, bool only_failures) {
  std::ostringstream o;
  o << "| figure | value | band | status |\n|---|---|---|---|\n";
  for (const BandCheck& c : checks) {
    if (only_failures && c.inside) continue;
    o << "| " << c.key << " | " << (c.missing ? "missing" : fmt(c.value, 5)) << " | [" << fmt(c.lo, 5) << ", "
      << fmt(c.hi, 5) << "] | " << (c.inside ? "ok" : c.missing ? "MISSING" : "MOVED") << " |\n";
  }
  return o.str();
}

}  // namespace mtf::experiments
