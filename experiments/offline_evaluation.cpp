// Stage 4 of the protocol (see stages.h): every policy evaluated offline,
// weighted GAUC on the test impressions (IntegratedRL-MTF section 4.3.1) and the
// off-policy estimators Conservative-OPE, FQE and NCIS (BatchRL-MTF), and the
// distribution of each policy's actions on a fixed probe of logged states
// (IntegratedRL-MTF Figs. 2 and 3, BatchRL-MTF Figs. 5 to 7).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <nlohmann/json.hpp>
#include <span>
#include <tuple>
#include <utility>

#include "agents/ope.h"
#include "experiments/metric_keys.h"
#include "experiments/stages.h"
#include "metrics/gauc.h"
#include "sim/fusion.h"

namespace mtf::experiments {

using nlohmann::json;

GaucData gauc_data(const Collected& col, const std::vector<int>& groups) {
  GaucData g;
  const TransitionColumnsView c = col.view();
  const std::span<const HeldImpression> held = col.impressions();
  if (c.size() > std::numeric_limits<std::uint32_t>::max() ||
      held.size() > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("weighted GAUC: more than 2^32 transitions or impressions");
  // The test requests in column order (the order the stream draws their
  // actions in), and for the lookup by (user, session, step) sorted by it; a
  // request recorded twice is found at its last row, as a map assigned in
  // row order would find it.
  using Key = std::tuple<std::int64_t, std::int32_t, std::int32_t>;
  std::vector<std::pair<Key, std::uint32_t>> by_key;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (std::find(groups.begin(), groups.end(), c.rows[i].group) != groups.end()) {
      by_key.push_back({{c.rows[i].user, c.rows[i].session, c.rows[i].step}, static_cast<std::uint32_t>(g.rows.size())});
      g.rows.push_back(static_cast<std::uint32_t>(i));
    }
  std::stable_sort(by_key.begin(), by_key.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const auto last = [](const auto& a, const auto& b) { return a.first == b.first; };
  // std::unique keeps the first of equal keys: keep the last by running it backwards.
  by_key.erase(by_key.begin(), std::unique(by_key.rbegin(), by_key.rend(), last).base());
  // The test impressions (index into held, request), then ordered by user
  // (stably: recorded order within a user), so that weighted_gauc reads every
  // policy's scores in place, user by user.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> matched;
  matched.reserve(held.size());  // the impressions held are those of the GAUC groups
  for (std::size_t k = 0; k < held.size(); ++k) {
    const HeldImpression& r = held[k];
    const Key key{r.user, r.session, r.step};
    const auto it = std::lower_bound(by_key.begin(), by_key.end(), key,
                                     [](const auto& e, const Key& x) { return e.first < x; });
    if (it == by_key.end() || it->first != key) continue;  // not a test group (or the request was not recorded)
    matched.emplace_back(static_cast<std::uint32_t>(k), it->second);
  }
  std::vector<std::pair<Key, std::uint32_t>>().swap(by_key);
  std::stable_sort(matched.begin(), matched.end(),
                   [&](const auto& a, const auto& b) { return held[a.first].user < held[b.first].user; });
  const std::size_t n = matched.size();
  g.held.reserve(n);
  g.user.reserve(n);
  g.label.reserve(n);
  g.weight.reserve(n);
  std::vector<std::uint32_t> request_of;  // test impression -> request
  request_of.reserve(n);
  for (const auto& [k, request] : matched) {
    const HeldImpression& r = held[k];
    g.held.push_back(k);
    request_of.push_back(request);
    g.user.push_back(r.user);
    g.label.push_back(r.valid ? 1 : 0);
    double w = r.reward + 1.0;  // IntegratedRL-MTF section 4.3.1: reward plus a constant 1
    if (w < 0) {
      w = 0;
      ++g.clamped;
    }
    g.weight.push_back(w);
  }
  std::vector<std::pair<std::uint32_t, std::uint32_t>>().swap(matched);
  // Impressions grouped by request (a counting sort: in recorded order within a request).
  g.first.assign(g.rows.size() + 1, 0);
  for (const std::uint32_t r : request_of) ++g.first[r + 1];
  for (std::size_t r = 0; r < g.rows.size(); ++r) g.first[r + 1] += g.first[r];
  g.imp.resize(request_of.size());
  std::vector<std::uint32_t> next(g.first.begin(), g.first.end() - 1);
  for (std::size_t k = 0; k < request_of.size(); ++k) g.imp[next[request_of[k]]++] = static_cast<std::uint32_t>(k);
  return g;
}

GaucResult policy_gauc(const GaucData& g, const Collected& col, const Policy& policy, const FusionParams& fusion,
                       std::uint64_t seed) {
  const TransitionColumnsView c = col.view();
  const std::span<const HeldImpression> held = col.impressions();
  const auto S = static_cast<std::size_t>(c.state_dim);
  // Every request's action from one stream seeded `seed`, in request order
  // (as one act_batch over all of them: a policy draws state by state).
  Rng rng(seed);
  std::vector<double> score(g.user.size());
  agents::Matrix states;
  std::vector<Rng*> rngs;
  std::vector<float> a(static_cast<std::size_t>(policy.action_dim()));
  agents::Matrix actions;
  for (std::size_t begin = 0; begin < g.rows.size(); begin += kGaucChunk) {
    const std::size_t n = std::min(kGaucChunk, g.rows.size() - begin);
    states.resize(static_cast<Eigen::Index>(S), static_cast<Eigen::Index>(n));
    for (std::size_t j = 0; j < n; ++j)
      std::copy_n(c.state.data() + static_cast<std::size_t>(g.rows[begin + j]) * S, S,
                  states.data() + j * S);
    actions.resize(policy.action_dim(), static_cast<Eigen::Index>(n));
    rngs.assign(n, &rng);
    policy.act_batch(std::span<const float>(states.data(), static_cast<std::size_t>(states.size())),
                     std::span<float>(actions.data(), static_cast<std::size_t>(actions.size())), rngs, {});
    for (std::size_t j = 0; j < n; ++j) {
      for (Eigen::Index i = 0; i < actions.rows(); ++i)
        a[static_cast<std::size_t>(i)] = static_cast<float>(actions(i, static_cast<Eigen::Index>(j)));
      const FusionWeights fw = weights_from_action(fusion, a);
      for (std::uint32_t q = g.first[begin + j]; q < g.first[begin + j + 1]; ++q) {
        const std::uint32_t k = g.imp[q];
        const HeldImpression& r = held[g.held[k]];
        // The log of Formula 1 (a monotone transform: the same per-user AUC) or Eq. 1 exactly.
        double x = 0;
        for (int t = 0; t < kNumTasks; ++t)
          x += fw.weight[t] * std::log(static_cast<double>(r.pred[t]) + fw.bias[t]);
        score[k] = x;
      }
    }
  }
  return weighted_gauc(g.user, g.label, g.weight, score);
}

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

void weighted_gauc_of_policies(ExperimentContext& ctx) {
  const GaucData g = gauc_data(ctx.col, ctx.dataset_groups(ctx.dataset(ctx.ex.gauc_dataset)));
  // Sharded (ExperimentContext::shards): each rank scores its users' impressions
  // (a user's AUC needs only the user's own) and the GAUC is the union's
  // sum_u W_u AUC_u / sum_u W_u, its sums added in rank order. The min-max
  // normalisation of step 1 (weighted_gauc) is then each rank's own: the same
  // per-user AUCs, up to ties closer than an ulp.
  const Cluster* ranks = ctx.shards();
  const std::vector<double> counts =
      sum_over_ranks(ranks, {static_cast<double>(g.user.size()), static_cast<double>(g.clamped)});
  const auto impressions = static_cast<std::int64_t>(counts[0]), clamped = static_cast<std::int64_t>(counts[1]);
  for (std::size_t i = 0; i < ctx.policies.size(); ++i) {
    const auto& [name, policy] = ctx.policies[i];
    std::uint64_t seed = ctx.sub_seed(kEvalDraws, i);
    if (ranks && ranks->rank() > 0) seed = derive_seed(seed, Stream::kExperiment, static_cast<std::uint64_t>(ranks->rank()));
    GaucResult r = policy_gauc(g, ctx.col, *policy, ctx.sc.fusion, seed);
    if (ranks) {  // every rank's users, merged in rank order
      const std::vector<std::string> all =
          ranks->all_gather(std::string_view(reinterpret_cast<const char*>(&r), sizeof r));
      std::vector<GaucResult> parts(all.size());
      for (std::size_t k = 0; k < all.size(); ++k) std::memcpy(&parts[k], all[k].data(), sizeof(GaucResult));
      r = merge_gauc(parts);
    }
    ctx.offline[keys::kWeightedGauc][name] = r.gauc;
    ctx.M.push_back(plain(keys::kOffline, name, keys::kWeightedGauc, r.gauc, impressions,
                          json{{"users_used", r.users_used},
                               {"users_skipped", r.users_skipped},
                               {"weights_clamped_at_0", clamped}}
                              .dump()));
  }
  ctx.log("offline: weighted GAUC of " + std::to_string(ctx.policies.size()) + " policies on " +
          std::to_string(impressions) + " impressions");
}

/// One off-policy estimate of `policy` (policy index i) by `method`; a
/// diverging estimator gives NaN with the error in its details.
agents::OpeEstimate estimate(const ExperimentContext& ctx, const agents::Dataset& data,
                             const Policy& policy, std::size_t i, const std::string& method,
                             const agents::TargetDraws* draws) {
  const OpeSpec& ope = ctx.ex.ope;
  agents::OpeEstimate e;
  try {
    if (method == keys::kNcis) {
      agents::NcisOptions no;
      no.cap = ope.ncis_cap;
      no.bandwidth = ope.ncis_bandwidth;
      no.seed = ctx.sub_seed(kOpeSeed, i);
      no.ranks = ctx.shards();
      e = agents::ncis(data, policy, no);
    } else {
      const bool conservative = method == keys::kConservativeOpe;
      agents::FqeOptions fo = fqe_options(ope, data, ctx.sub_seed(kOpeSeed, i), conservative, ctx.shards());
      fo.curve_points = 50;
      if (conservative) {
        e = agents::conservative_ope(data, policy, fo, draws);
      } else {
        e = agents::fitted_q_evaluation(data, policy, fo, draws);
      }
    }
  } catch (const std::exception& err) {
    // A diverging estimator (likely for targets far outside the data) is a
    // finding, not a reason to lose the run.
    if (!every_rank_threw(ctx, err)) throw;
    e.value = std::nan("");
    e.details = json{{"error", err.what()}};
  }
  return e;
}

/// The OPE dataset `name` estimated by every method; `suffix` ("" for
/// offline.ope.dataset, "@NAME" for an extra set) names its metrics.
void off_policy_estimates(ExperimentContext& ctx, const std::string& name, const std::string& suffix) {
  const DatasetSpec& d = ctx.dataset(name);
  const std::vector<std::size_t> rows =
      select_rows(ctx.col.view(), ctx.dataset_groups(d), d.time_from * ctx.period, d.time_to * ctx.period);
  if (rows.empty() && ctx.shards())
    throw ExperimentError("experiment: the OPE dataset " + name + " holds no transitions of " + shard_name(ctx) +
                          ": use fewer ranks, or run without --data-parallel");
  const agents::Dataset data = ctx.col.dataset(rows, {}, d);
  for (std::size_t i = 0; i < ctx.policies.size(); ++i) {
    const auto& policy = ctx.policies[i].second;
    // The policy's name by a named reference: clang before 16 refuses a
    // lambda that captures a structured binding.
    const std::string& subject = ctx.policies[i].first;
    // FQE and Conservative-OPE of one policy draw the same target actions (same
    // data, seed and samples): drawn once, they cost once (most of a fit's
    // time for BCQ) and give the same bits.
    std::optional<agents::TargetDraws> draws;
    double draw_seconds = 0;
    const auto fqe_type = [](const std::string& m) { return m == keys::kFqe || m == keys::kConservativeOpe; };
    if (std::count_if(ctx.ex.ope.methods.begin(), ctx.ex.ope.methods.end(), fqe_type) >= 2) {
      const auto t = Clock::now();
      try {
        draws = agents::draw_target_actions(
            data, *policy, fqe_options(ctx.ex.ope, data, ctx.sub_seed(kOpeSeed, i), false, ctx.shards()));
      } catch (const std::exception& err) {
        // Each fit then draws, fails and records its own error.
        if (!every_rank_threw(ctx, err)) throw;
      }
      draw_seconds = seconds_since(t);
    }
    for (const std::string& method : ctx.ex.ope.methods) {
      const std::string metric = method + suffix;
      const auto t = Clock::now();
      const agents::OpeEstimate e = estimate(ctx, data, *policy, i, method, draws ? &*draws : nullptr);
      // The shared draws' time is the first fit's, as when each fit drew its own.
      const double seconds = seconds_since(t) + (fqe_type(method) ? std::exchange(draw_seconds, 0.0) : 0.0);
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
          json{{"per_step", e.per_step}, {"seconds", seconds}, {"dataset", name}, {"details", e.details}}
              .dump()));
    }
    ctx.log("offline: " + subject + " evaluated on " + name + " (" +
            std::to_string(static_cast<std::int64_t>(sum_over_ranks(ctx.shards(), {static_cast<double>(data.size())})[0])) +
            " transitions)");
  }
}

/// States in the action probe: enough for a 20-bin histogram per dimension
/// whose shares move by well under a percentage point between probes, and
/// cheap (one batch per policy).
constexpr std::size_t kProbeStates = 2048;
constexpr int kHistogramBins = 20;

/// The action probe: up to `most` recorded requests of every group, evenly
/// spaced over the recording order (which is fixed: the recorder writes in
/// user order whatever the thread count).
agents::Matrix probe_states(const TransitionColumnsView& c, std::size_t most) {
  const std::size_t n = std::min(c.size(), most);
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
  agents::Matrix states;
  if (const Cluster* ranks = ctx.shards()) {
    // Sharded: each rank's share of the probe from its rows, in rank order,
    // the same states on every rank.
    const auto N = static_cast<std::size_t>(ranks->size());
    const agents::Matrix mine = probe_states(ctx.col.view(), (kProbeStates + N - 1) / N);
    const std::vector<std::string> all = ranks->all_gather(std::string_view(
        reinterpret_cast<const char*>(mine.data()), static_cast<std::size_t>(mine.size()) * sizeof(float)));
    std::size_t cols = 0;
    for (const std::string& b : all) cols += b.size() / (sizeof(float) * static_cast<std::size_t>(ctx.S));
    states.resize(ctx.S, static_cast<Eigen::Index>(cols));
    std::size_t at = 0;
    for (const std::string& b : all) {
      std::memcpy(reinterpret_cast<char*>(states.data()) + at, b.data(), b.size());
      at += b.size();
    }
  } else {
    states = probe_states(ctx.col.view(), kProbeStates);
  }
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
  if (sum_over_ranks(ctx.shards(), {static_cast<double>(ctx.col.size())})[0] > 0) action_histograms(ctx);
}

}  // namespace mtf::experiments
