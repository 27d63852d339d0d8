// Stage 4 of the protocol (see stages.h): every policy evaluated offline,
// weighted GAUC on the test impressions (IntegratedRL-MTF section 4.3.1) and the
// off-policy estimators Conservative-OPE, FQE and NCIS (BatchRL-MTF), and the
// distribution of each policy's actions on a fixed probe of logged states
// (IntegratedRL-MTF Figs. 2 and 3, BatchRL-MTF Figs. 5 to 7).
#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <tuple>

#include "agents/ope.h"
#include "experiments/metric_keys.h"
#include "experiments/stages.h"
#include "metrics/gauc.h"
#include "sim/fusion.h"

namespace mtf::experiments {

using nlohmann::json;

namespace {

/// Actions of `policy` for the columns of `states` (S x N) through
/// Policy::act_batch, every row drawing from one stream seeded `seed` in row
/// order: agents act on the whole batch in one pass (AgentBase::act_batch),
/// other policies state by state.
agents::Matrix policy_actions(const Policy& policy, const agents::Matrix& states,
                              std::uint64_t seed) {
  agents::Matrix actions(policy.action_dim(), states.cols());
  Rng rng(seed);
  const std::vector<Rng*> rngs(static_cast<std::size_t>(states.cols()), &rng);
  policy.act_batch(std::span<const float>(states.data(), static_cast<std::size_t>(states.size())),
                   std::span<float>(actions.data(), static_cast<std::size_t>(actions.size())), rngs,
                   {});
  return actions;
}

struct GaucData {
  agents::Matrix states;          // one column per test request
  std::vector<std::size_t> kept;  // impressions with a test request
  std::vector<int> request_of;    // kept impression -> request column
  std::vector<std::int64_t> user;
  std::vector<std::uint8_t> label;
  std::vector<double> weight;
  std::int64_t clamped = 0;  // weights below 0 set to 0
  const std::vector<ImpressionRow>* imps = nullptr;
};

GaucData gauc_data(const Collected& col, const std::vector<int>& groups) {
  GaucData g;
  std::map<std::tuple<std::int64_t, int, int>, int> request;
  const TransitionColumnsView c = col.view();
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (std::find(groups.begin(), groups.end(), c.rows[i].group) != groups.end()) {
      request[{c.rows[i].user, c.rows[i].session, c.rows[i].step}] = static_cast<int>(rows.size());
      rows.push_back(i);
    }
  g.states.resize(c.state_dim, static_cast<Eigen::Index>(rows.size()));
  for (std::size_t k = 0; k < rows.size(); ++k)
    for (int i = 0; i < c.state_dim; ++i)
      g.states(i, static_cast<Eigen::Index>(k)) = c.state[rows[k] * c.state_dim + i];
  g.imps = &col.impressions;
  for (std::size_t k = 0; k < col.impressions.size(); ++k) {
    const ImpressionRow& r = col.impressions[k];
    const auto it = request.find({r.user, r.session, r.step});
    if (it == request.end()) continue;  // not a test group (or the request was not recorded)
    g.kept.push_back(k);
    g.request_of.push_back(it->second);
    g.user.push_back(r.user);
    g.label.push_back(r.valid ? 1 : 0);
    double w = r.reward + 1.0;  // IntegratedRL-MTF section 4.3.1: reward plus a constant 1
    if (w < 0) {
      w = 0;
      ++g.clamped;
    }
    g.weight.push_back(w);
  }
  return g;
}

GaucResult policy_gauc(const GaucData& g, const Policy& policy, const FusionParams& fusion,
                       std::uint64_t seed) {
  const agents::Matrix actions = policy_actions(policy, g.states, seed);
  std::vector<FusionWeights> w(static_cast<std::size_t>(actions.cols()));
  std::vector<float> a(static_cast<std::size_t>(actions.rows()));
  for (Eigen::Index j = 0; j < actions.cols(); ++j) {
    for (Eigen::Index i = 0; i < actions.rows(); ++i) a[i] = static_cast<float>(actions(i, j));
    w[static_cast<std::size_t>(j)] = weights_from_action(fusion, a);
  }
  std::vector<double> score(g.kept.size());
  for (std::size_t k = 0; k < g.kept.size(); ++k) {
    const ImpressionRow& r = (*g.imps)[g.kept[k]];
    const FusionWeights& fw = w[static_cast<std::size_t>(g.request_of[k])];
    // The log of Formula 1 (a monotone transform: the same per-user AUC) or Eq. 1 exactly.
    double x = 0;
    for (int t = 0; t < kNumTasks; ++t)
      x += fw.weight[t] * std::log(static_cast<double>(r.pred[t]) + fw.bias[t]);
    score[k] = x;
  }
  return weighted_gauc(g.user, g.label, g.weight, score);
}

void weighted_gauc_of_policies(ExperimentContext& ctx) {
  const GaucData g = gauc_data(ctx.col, ctx.dataset_groups(ctx.dataset(ctx.ex.gauc_dataset)));
  for (std::size_t i = 0; i < ctx.policies.size(); ++i) {
    const auto& [name, policy] = ctx.policies[i];
    const GaucResult r = policy_gauc(g, *policy, ctx.sc.fusion, ctx.sub_seed(kEvalDraws, i));
    ctx.offline[keys::kWeightedGauc][name] = r.gauc;
    ctx.M.push_back(plain(keys::kOffline, name, keys::kWeightedGauc, r.gauc,
                          static_cast<std::int64_t>(g.user.size()),
                          json{{"users_used", r.users_used},
                               {"users_skipped", r.users_skipped},
                               {"weights_clamped_at_0", g.clamped}}
                              .dump()));
  }
  ctx.log("offline: weighted GAUC of " + std::to_string(ctx.policies.size()) + " policies on " +
          std::to_string(g.user.size()) + " impressions");
}

/// One off-policy estimate of `policy` (policy index i) by `method`; a
/// diverging estimator gives NaN with the error in its details.
agents::OpeEstimate estimate(const ExperimentContext& ctx, const agents::Dataset& data,
                             const Policy& policy, std::size_t i, const std::string& method) {
  const OpeSpec& ope = ctx.ex.ope;
  agents::OpeEstimate e;
  try {
    if (method == keys::kNcis) {
      agents::NcisOptions no;
      no.cap = ope.ncis_cap;
      no.bandwidth = ope.ncis_bandwidth;
      no.seed = ctx.sub_seed(kOpeSeed, i);
      e = agents::ncis(data, policy, no);
    } else {
      const bool conservative = method == keys::kConservativeOpe;
      agents::FqeOptions fo = fqe_options(ope, data, ctx.sub_seed(kOpeSeed, i), conservative);
      fo.curve_points = 50;
      if (conservative) {
        e = agents::conservative_ope(data, policy, fo);
      } else {
        e = agents::fitted_q_evaluation(data, policy, fo);
      }
    }
  } catch (const std::exception& err) {
    // A diverging estimator (likely for targets far outside the data) is a
    // finding, not a reason to lose the run.
    e.value = std::nan("");
    e.details = json{{"error", err.what()}};
  }
  return e;
}

/// The OPE dataset `name` estimated by every method; `suffix` ("" for
/// offline.ope.dataset, "@NAME" for an extra set) names its metrics.
void off_policy_estimates(ExperimentContext& ctx, const std::string& name, const std::string& suffix) {
  const DatasetSpec& d = ctx.dataset(name);
  const agents::Dataset data = ctx.col.dataset(
      select_rows(ctx.col.view(), ctx.dataset_groups(d), d.time_from * ctx.period, d.time_to * ctx.period), {},
      d);
  for (std::size_t i = 0; i < ctx.policies.size(); ++i) {
    const auto& policy = ctx.policies[i].second;
    // The policy's name by a named reference: clang before 16 refuses a
    // lambda that captures a structured binding.
    const std::string& subject = ctx.policies[i].first;
    for (const std::string& method : ctx.ex.ope.methods) {
      const std::string metric = method + suffix;
      const auto t = Clock::now();
      const agents::OpeEstimate e = estimate(ctx, data, *policy, i, method);
      ctx.offline[metric][subject] = e.value;
      for (const agents::OpePoint& c : e.curve) {
        const auto row = [&](const char* part, double value) {
          MetricRow r = plain(keys::kOpeCurve, subject, metric + part, value, e.transitions);
          r.rep = c.step;
          ctx.M.push_back(std::move(r));
        };
        row(keys::kEstimateSuffix, c.value);
        row(keys::kTdLossSuffix, c.td_loss);
        if (method == keys::kConservativeOpe) row(keys::kRegulariserSuffix, c.cql_regulariser);
      }
      ctx.M.push_back(plain(
          keys::kOffline, subject, metric, e.value, e.transitions,
          json{{"per_step", e.per_step}, {"seconds", seconds_since(t)}, {"dataset", name}, {"details", e.details}}
              .dump()));
    }
    ctx.log("offline: " + subject + " evaluated on " + name + " (" + std::to_string(data.size()) + " transitions)");
  }
}

/// States in the action probe: enough for a 20-bin histogram per dimension
/// whose shares move by well under a percentage point between probes, and
/// cheap (one batch per policy).
constexpr std::size_t kProbeStates = 2048;
constexpr int kHistogramBins = 20;

/// The action probe: up to kProbeStates recorded requests of every group,
/// evenly spaced over the recording order (which is fixed: the recorder
/// writes in user order whatever the thread count).
agents::Matrix probe_states(const TransitionColumnsView& c) {
  const std::size_t n = std::min(c.size(), kProbeStates);
  agents::Matrix states(c.state_dim, static_cast<Eigen::Index>(n));
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t row = k * c.size() / n;
    for (int i = 0; i < c.state_dim; ++i)
      states(i, static_cast<Eigen::Index>(k)) = c.state[row * c.state_dim + i];
  }
  return states;
}

/// Each policy's actions on the probe, one histogram per action dimension
/// over [-1, 1] (section action_histogram). The same states for every policy:
/// the differences are the policies', not the traffic's.
void action_histograms(ExperimentContext& ctx) {
  const agents::Matrix states = probe_states(ctx.col.view());
  const auto n = static_cast<std::int64_t>(states.cols());
  for (std::size_t p = 0; p < ctx.policies.size(); ++p) {
    const auto& [name, policy] = ctx.policies[p];
    const agents::Matrix actions = policy_actions(*policy, states, ctx.sub_seed(kActionProbe, p));
    for (Eigen::Index k = 0; k < actions.rows(); ++k) {
      std::vector<std::int64_t> counts(kHistogramBins, 0);
      double sum = 0;
      for (Eigen::Index j = 0; j < actions.cols(); ++j) {
        const double a = std::clamp(static_cast<double>(actions(k, j)), -1.0, 1.0);
        sum += a;
        const int bin = std::min(kHistogramBins - 1, static_cast<int>((a + 1.0) / 2.0 * kHistogramBins));
        ++counts[static_cast<std::size_t>(bin)];
      }
      const FusionDim& dim = ctx.sc.fusion.dims[static_cast<std::size_t>(k)];
      const std::string label = std::string(kTaskNames[static_cast<std::size_t>(dim.task)]) +
                                (dim.is_bias ? " bias" : " pow");
      std::string metric = "a";  // (not "a" + to_string: GCC 12 warns falsely, -Wrestrict)
      metric += std::to_string(k);
      ctx.M.push_back(plain(keys::kActionHistogram, name, metric, sum / static_cast<double>(n),
                            n,
                            json{{keys::detail::kLabel, label},
                                 {keys::detail::kLo, -1.0},
                                 {keys::detail::kHi, 1.0},
                                 {keys::detail::kCounts, counts}}
                                .dump()));
    }
  }
  ctx.log("offline: actions of " + std::to_string(ctx.policies.size()) + " policies on a probe of " +
          std::to_string(n) + " logged states");
}

}  // namespace

void evaluate_offline(ExperimentContext& ctx) {
  if (!ctx.ex.gauc_dataset.empty()) weighted_gauc_of_policies(ctx);
  if (!ctx.ex.ope.dataset.empty()) {
    off_policy_estimates(ctx, ctx.ex.ope.dataset, "");
    for (const std::string& extra : ctx.ex.ope.extra_datasets) off_policy_estimates(ctx, extra, "@" + extra);
  }
  if (ctx.col.size() > 0) action_histograms(ctx);
}

}  // namespace mtf::experiments
