// The protocol engine (see experiment.h): exploration with progressive rounds,
// training, online learners, offline evaluation, replicated A/B tests.
#include "experiments/experiment.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <unistd.h>

#include "agents/agent.h"
#include "agents/nn/tensor.h"
#include "agents/online/online_learner.h"
#include "agents/ope.h"
#include "metrics/gauc.h"
#include "metrics/reward.h"
#include "metrics/stats.h"
#include "core/sim_time.h"
#include "sim/exploration.h"
#include "sim/fusion.h"
#include "sim/policies.h"
#include "sim/simulator.h"
#include "sim/state_features.h"

namespace mtf::experiments {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int group_index(const Scenario& s, const std::string& name) {
  for (std::size_t g = 0; g < s.groups.size(); ++g)
    if (s.groups[g].name == name) return static_cast<int>(g);
  return -1;
}

/// Sub-seeds of the experiment (Stream::kExperiment, purpose, index).
enum Purpose : std::uint64_t { kLearnerUsers = 1, kAbUsers = 2, kAgentSeed = 3, kEvalDraws = 4, kLearnerSeed = 5, kOpeSeed = 6 };
std::uint64_t sub_seed(const Scenario& s, Purpose p, std::uint64_t i) {
  return derive_seed(s.seed, Stream::kExperiment, p, i);
}

/// What the exploration recorded, kept in memory for datasets and GAUC.
struct Collected {
  TransitionColumns transitions;  // all groups
  std::vector<ImpressionRow> impressions;
};

/// Transition rows of `groups` within a time window, with an optional reward variant.
std::vector<TransitionRow> select_rows(const TransitionColumns& c, const std::vector<int>& groups,
                                       double t_from, double t_to, const RewardParams* reward) {
  std::vector<TransitionRow> out;
  const int S = c.state_dim, A = c.action_dim;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const auto& r = c.rows[i];
    if (std::find(groups.begin(), groups.end(), r.group) == groups.end()) continue;
    if (r.time < t_from || r.time >= t_to) continue;
    TransitionRow t;
    t.user = r.user;
    t.session = r.session;
    t.step = r.step;
    t.group = r.group;
    t.time = r.time;
    const auto slice = [&](const std::vector<float>& v, int d) {
      return std::vector<float>(v.begin() + static_cast<std::ptrdiff_t>(i) * d,
                                v.begin() + static_cast<std::ptrdiff_t>(i + 1) * d);
    };
    t.state = slice(c.state, S);
    t.next_state = slice(c.next_state, S);
    t.action = slice(c.action, A);
    if (r.has_baseline) t.baseline = slice(c.baseline, A);
    if (r.has_bounds) {
      t.lower = slice(c.lower, A);
      t.upper = slice(c.upper, A);
    }
    t.reward = reward ? static_cast<float>(reward_of(*reward, r.counts)) : r.reward;
    t.done = r.done;
    t.counts = r.counts;
    t.log_density = r.log_density;
    out.push_back(std::move(t));
  }
  return out;
}

/// A frozen copy of an agent (save + load), safe to deploy while the original trains on.
PolicyPtr snapshot(const agents::Agent& a, const std::string& tag) {
  static std::atomic<int> counter{0};
  const auto path = std::filesystem::temp_directory_path() /
                    ("mtfsim-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
                     std::to_string(std::hash<std::string>{}(tag)) + ".agent");
  a.save(path);
  std::shared_ptr<agents::Agent> copy = agents::load_agent(path);
  std::filesystem::remove(path);
  return copy;
}

PolicyPtr bounded_around(const GroupSpec& g, PolicyPtr base) {
  const auto& b = g.policy.bound;
  if (b.size() == 1) return std::make_shared<BoundedUniformPolicy>(std::move(base), b[0]);
  return std::make_shared<BoundedUniformPolicy>(std::move(base), b);
}

// ---------------------------------------------------------------------------
// User-level metrics (A/B and exploration cost)
// ---------------------------------------------------------------------------

/// Per-user values of every A/B metric for the users of one group over a
/// window of `days` days (bit 0 of active_days = the window's first day).
struct ArmValues {
  std::map<std::string, std::vector<double>> value;       // mean metrics
  std::map<std::string, std::vector<double>> num, den;    // ratio metrics
  std::int64_t users = 0;
};

ArmValues arm_values(const std::vector<UserTotals>& totals, const Simulator& sim, int group, int days) {
  ArmValues a;
  for (std::size_t u = 0; u < totals.size(); ++u) {
    if (sim.group_of(static_cast<std::int64_t>(u)) != group) continue;
    const UserTotals& t = totals[u];
    ++a.users;
    const double d = days;
    a.value["valid_per_user_day"].push_back(t.counts.valid / d);
    a.value["watch_s_per_user_day"].push_back(t.counts.watch_seconds / d);
    a.value["dwell_s_per_user_day"].push_back(t.counts.dwell_seconds / d);
    a.value["reward_per_user_day"].push_back(t.reward / d);
    a.value["active_day_share"].push_back(std::popcount(t.active_days) / d);
    a.num["positive_rate"].push_back(t.counts.likes + t.counts.shares + t.counts.comments);
    a.den["positive_rate"].push_back(t.counts.plays);
    int eligible = 0, returned = 0;
    for (int k = 0; k + 1 < days; ++k) {
      if (!(t.active_days >> k & 1u)) continue;
      ++eligible;
      returned += static_cast<int>(t.active_days >> (k + 1) & 1u);
    }
    a.num["return_rate"].push_back(returned);
    a.den["return_rate"].push_back(eligible);
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

/// Lift of `t` over `c` for metric m, or nullopt when undefined (control 0, too few users).
std::optional<stats::Lift> lift(const ArmValues& c, const ArmValues& t, const AbMetric& m) {
  try {
    if (!m.ratio) return stats::mean_lift(c.value.at(m.name), t.value.at(m.name));
    return stats::ratio_lift(c.num.at(m.name), c.den.at(m.name), t.num.at(m.name), t.den.at(m.name));
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

MetricRow lift_row(const std::string& section, const std::string& subject, const std::string& metric,
                   const stats::Lift& l, std::optional<std::int64_t> rep) {
  MetricRow r;
  r.section = section;
  r.subject = subject;
  r.metric = metric;
  r.value = l.lift;
  r.ci_low = l.ci_low;
  r.ci_high = l.ci_high;
  r.p_value = l.p_value;
  r.rep = rep;
  r.n = static_cast<std::int64_t>(l.n_treatment);
  r.details = json{{"control", l.control}, {"treatment", l.treatment}, {"n_control", l.n_control}}.dump();
  return r;
}

MetricRow plain(const std::string& section, const std::string& subject, const std::string& metric,
                double value, std::optional<std::int64_t> n = std::nullopt, std::string details = {}) {
  MetricRow r;
  r.section = section;
  r.subject = subject;
  r.metric = metric;
  r.value = value;
  r.n = n;
  r.details = std::move(details);
  return r;
}

// ---------------------------------------------------------------------------
// Offline: weighted GAUC on the test impressions
// ---------------------------------------------------------------------------

/// Actions of `policy` for the columns of `states` (S x N), batched for agents.
agents::Matrix policy_actions(const Policy& policy, const agents::Matrix& states, std::uint64_t seed) {
  const int A = policy.action_dim();
  agents::Matrix actions(A, states.cols());
  Rng rng(seed);
  if (const auto* agent = dynamic_cast<const agents::Agent*>(&policy)) {
    agent->act_batch(states, actions, rng);
    return actions;
  }
  std::vector<float> s(states.rows()), a(A);
  for (Eigen::Index j = 0; j < states.cols(); ++j) {
    for (Eigen::Index i = 0; i < states.rows(); ++i) s[i] = static_cast<float>(states(i, j));
    policy.act(s, a, rng, nullptr);
    for (int i = 0; i < A; ++i) actions(i, j) = a[i];
  }
  return actions;
}

struct GaucData {
  agents::Matrix states;                   // one column per test request
  std::vector<std::size_t> kept;           // impressions with a test request
  std::vector<int> request_of;             // kept impression -> request column
  std::vector<std::int64_t> user;
  std::vector<std::uint8_t> label;
  std::vector<double> weight;
  std::int64_t clamped = 0;                // weights below 0 set to 0
  const std::vector<ImpressionRow>* imps = nullptr;
};

GaucData gauc_data(const Collected& col, const std::vector<int>& groups) {
  GaucData g;
  std::map<std::tuple<std::int64_t, int, int>, int> request;
  const TransitionColumns& c = col.transitions;
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
    double w = r.reward + 1.0;  // seed 000 section 4.3.1: reward plus a constant 1
    if (w < 0) {
      w = 0;
      ++g.clamped;
    }
    g.weight.push_back(w);
  }
  return g;
}

GaucResult policy_gauc(const GaucData& g, const Policy& policy, const FusionParams& fusion, std::uint64_t seed) {
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
    for (int t = 0; t < kNumTasks; ++t) x += fw.weight[t] * std::log(static_cast<double>(r.pred[t]) + fw.bias[t]);
    score[k] = x;
  }
  return weighted_gauc(g.user, g.label, g.weight, score);
}

}  // namespace

ExperimentResult run_experiment(const Scenario& sc, const ExperimentSpec& ex, const std::filesystem::path& out,
                                const ExperimentOptions& opt) {
  const auto t0 = Clock::now();
  const auto log = [&](const std::string& line) {
    if (opt.log) opt.log(line);
  };
  nn::set_num_threads(opt.threads);
  ExperimentResult res;
  std::vector<MetricRow>& M = res.metrics;
  std::int64_t sessions_capped = 0;  // over every simulation of every stage (scenario "limits")
  const int S = kStateDim, A = sc.action_dim();
  const double period = sc.days * kSecondsPerDay;

  // ---- 1. Exploration ------------------------------------------------------
  Simulator sim(sc);
  Recorder rec(out, sim.run_info(code_version(), opt.threads));
  std::vector<bool> imp_groups(sc.groups.size(), false);
  const auto dataset = [&](const std::string& name) -> const DatasetSpec& {
    for (const auto& d : ex.datasets)
      if (d.name == name) return d;
    throw ExperimentError("experiment: no dataset " + name);
  };
  const auto dataset_groups = [&](const DatasetSpec& d) {
    std::vector<int> g;
    for (const auto& n : d.groups) g.push_back(group_index(sc, n));
    return g;
  };
  if (!ex.gauc_dataset.empty())
    for (int g : dataset_groups(dataset(ex.gauc_dataset))) imp_groups[g] = true;
  sim.set_impression_groups(imp_groups);
  sim.track_user_totals(true);

  Collected col;
  col.transitions.state_dim = S;
  col.transitions.action_dim = A;
  RunOptions ro;
  ro.threads = opt.threads;
  ro.collect = true;
  ro.on_batch = [&](const RecordBatch& b) {
    col.transitions.append(b.transition_columns);
    col.impressions.insert(col.impressions.end(), b.impressions.begin(), b.impressions.end());
  };

  // Agents are created up front (progressive ones train during the exploration).
  std::map<std::string, std::unique_ptr<agents::Agent>> agent;
  for (std::size_t i = 0; i < ex.agents.size(); ++i) {
    const AgentSpec& a = ex.agents[i];
    agent[a.name] = agents::make_agent(a.type, a.hyperparameters, S, A, sub_seed(sc, kAgentSeed, i));
  }
  std::map<std::string, double> train_seconds;
  std::map<std::string, std::int64_t> train_rows;
  std::set<std::string> failed;  // agents whose training diverged: reported, not deployed
  const auto train = [&](const AgentSpec& a, const agents::Dataset& data) {
    const auto t = Clock::now();
    try {
      agent.at(a.name)->train(data, a.steps);
    } catch (const agents::TrainingDiverged& e) {
      failed.insert(a.name);
      M.push_back(plain("training", a.name, "diverged_at_step", static_cast<double>(e.step()), std::nullopt,
                        json{{"error", e.what()}}.dump()));
      log("training " + a.name + " diverged: " + e.what());
    }
    train_seconds[a.name] += seconds_since(t);
    train_rows[a.name] = data.size();
  };
  // Datasets are built once per (dataset, reward variant).
  std::map<std::string, std::shared_ptr<const agents::Dataset>> datasets;
  const auto dataset_for = [&](const AgentSpec& a) -> const agents::Dataset& {
    std::string key = a.dataset;
    if (a.reward) {
      const RewardParams& w = *a.reward;
      for (double x : {w.play, w.valid, w.watch_minutes, w.finish, w.like, w.share, w.comment, w.skip})
        key.append("|").append(json(x).dump());
    }
    auto& d = datasets[key];
    if (!d) {
      const DatasetSpec& ds = dataset(a.dataset);
      const auto rows = select_rows(col.transitions, dataset_groups(ds), ds.time_from * period, ds.time_to * period,
                                    a.reward ? &*a.reward : nullptr);
      if (rows.empty())
        throw ExperimentError("experiment: agent " + a.name + ": its dataset " + a.dataset +
                              " holds no transitions (check its groups and time window)");
      d = std::make_shared<const agents::Dataset>(rows);
    }
    return *d;
  };
  std::size_t written = 0;
  const auto flush = [&] {
    rec.write_metrics(std::vector<MetricRow>(M.begin() + static_cast<std::ptrdiff_t>(written), M.end()));
    written = M.size();
  };
  const auto agent_spec = [&](const std::string& name) -> const AgentSpec& {
    for (const auto& a : ex.agents)
      if (a.name == name) return a;
    throw ExperimentError("experiment: no agent " + name);
  };

  // Progressive rounds split the days; all groups advance together.
  int round_days = sc.days;
  for (const auto& p : ex.progressive) round_days = std::gcd(round_days, sc.days / p.rounds);
  for (int day = 0; day < sc.days; day += round_days) {
    const RunResult r = sim.run_days(round_days, ro, &rec);
    sessions_capped += r.sessions_capped;
    log("exploration: days " + std::to_string(day) + "-" + std::to_string(day + round_days - 1) + ", " +
        std::to_string(r.requests) + " requests");
    for (const auto& p : ex.progressive) {
      const int days_per_round = sc.days / p.rounds;
      if ((day + round_days) % days_per_round != 0) continue;
      const int g = group_index(sc, p.group);
      const AgentSpec& a = agent_spec(p.agent);
      const int round = (day + round_days) / days_per_round;
      const auto rows = select_rows(col.transitions, {g}, 0, 1e300, a.reward ? &*a.reward : nullptr);
      if (rows.empty()) throw ExperimentError("experiment: progressive group " + p.group + " recorded no transitions");
      train(a, agents::Dataset(rows));
      log("progressive: " + a.name + " trained after round " + std::to_string(round) + " of " + std::to_string(p.rounds));
      M.push_back(plain("progressive", a.name, "transitions_after_round", static_cast<double>(train_rows[a.name]), round));
      if (day + round_days < sc.days && !failed.count(a.name))
        sim.set_policy(g, bounded_around(sc.groups[g], snapshot(*agent.at(a.name), a.name)));
    }
  }
  M.push_back(plain("exploration", "all", "transitions", static_cast<double>(col.transitions.size())));
  M.push_back(plain("exploration", "all", "impressions", static_cast<double>(col.impressions.size())));
  flush();

  // Exploration cost: each group against the control group over the exploration days.
  if (!ex.exploration_control.empty()) {
    const int cg = group_index(sc, ex.exploration_control);
    const ArmValues c = arm_values(sim.user_totals(), sim, cg, sc.days);
    for (std::size_t g = 0; g < sc.groups.size(); ++g) {
      const ArmValues t = arm_values(sim.user_totals(), sim, static_cast<int>(g), sc.days);
      for (const AbMetric& m : ab_metrics()) {
        M.push_back(plain("exploration_level", sc.groups[g].name, m.name, arm_level(t, m), t.users));
        if (static_cast<int>(g) == cg) continue;
        if (const auto l = lift(c, t, m)) M.push_back(lift_row("exploration", sc.groups[g].name, m.name, *l, std::nullopt));
      }
    }
  }
  // Seed 000 section 4.5.2: density of samples near the baseline, bounded uniform vs Gaussian.
  // Only when the exploration has both kinds (seed 000's comparison).
  double sigma = 0, bound = 0;
  for (const auto& g : sc.groups) {
    if (g.policy.kind == PolicyKind::kGaussian) sigma = g.policy.sigma;
    if (g.policy.kind == PolicyKind::kBoundedUniform) bound = g.policy.bound[0];
  }
  if (sigma > 0 && bound > 0) {
    std::vector<float> mu(static_cast<std::size_t>(A), 0.0f);
    std::int64_t nb = 0;
    for (std::size_t i = 0; i < col.transitions.size(); ++i)
      if (col.transitions.rows[i].has_baseline) {
        for (int k = 0; k < A; ++k) mu[k] += col.transitions.baseline[i * A + k];
        ++nb;
      }
    if (nb > 0)
      for (float& x : mu) x /= static_cast<float>(nb);
    const NearBaselineDensity meas = near_baseline_density(mu, sigma, bound, bound, 1000000, sub_seed(sc, kEvalDraws, 99));
    const NearBaselineDensity ana = near_baseline_density_analytic(mu, sigma, bound, bound);
    const std::string det = json{{"sigma", sigma}, {"bound", bound}, {"radius", bound}, {"dims", A}}.dump();
    M.push_back(plain("density", "gaussian", "share_near_baseline", meas.gaussian_share, 1000000, det));
    M.push_back(plain("density", "bounded_uniform", "share_near_baseline", meas.uniform_share, 1000000, det));
    M.push_back(plain("density", "ratio", "measured", meas.ratio, 1000000, det));
    M.push_back(plain("density", "ratio", "analytic", ana.ratio, std::nullopt, det));
    M.push_back(plain("density", "ratio", "log2_analytic", std::log2(ana.ratio), std::nullopt, det));
  }

  // ---- 2. Training ---------------------------------------------------------
  for (const AgentSpec& a : ex.agents) {
    const bool progressive = std::any_of(ex.progressive.begin(), ex.progressive.end(),
                                         [&](const ProgressiveSpec& p) { return p.agent == a.name; });
    if (!progressive) {
      train(a, dataset_for(a));
      log("trained " + a.name + " (" + a.type + ") on " + a.dataset + ": " + std::to_string(train_rows[a.name]) +
          " transitions, " + std::to_string(a.steps) + " steps, " + std::to_string(train_seconds[a.name]).substr(0, 5) + " s");
    }
    M.push_back(plain("training", a.name, "transitions", static_cast<double>(train_rows[a.name])));
    M.push_back(plain("training", a.name, "steps", static_cast<double>(agent.at(a.name)->steps_trained())));
    M.push_back(plain("training", a.name, "seconds", train_seconds[a.name], std::nullopt,
                      json{{"type", a.type}, {"dataset", a.dataset}, {"hyperparameters", agent.at(a.name)->hyperparameters()}}.dump()));
  }

  // The policies under evaluation, in a fixed order.
  std::vector<std::pair<std::string, PolicyPtr>> policies;
  policies.emplace_back("baseline", std::make_shared<BaselinePolicy>(sc.fusion));

  // ---- 3. Online learners --------------------------------------------------
  for (std::size_t li = 0; li < ex.learners.size(); ++li) {
    const LearnerSpec& l = ex.learners[li];
    auto learner = agents::make_online_learner(l.type, l.hyperparameters, S, A, policies[0].second,
                                               sub_seed(sc, kLearnerSeed, li));
    const int K = learner->candidates_per_round();
    Scenario ls = sc;
    ls.population.size = l.users;
    ls.days = l.rounds * l.days_per_round;
    ls.groups.clear();
    for (int k = 0; k < K; ++k) ls.groups.push_back(GroupSpec{"candidate" + std::to_string(k), 1.0, PolicySpec{}});
    std::vector<PolicyPtr> init(static_cast<std::size_t>(K), policies[0].second);
    Simulator lsim(ls, init, sub_seed(sc, kLearnerUsers, li));
    RunOptions lo;
    lo.threads = opt.threads;
    const auto tl = Clock::now();
    for (int round = 0; round < l.rounds; ++round) {
      const std::vector<PolicyPtr> cand = learner->propose();
      for (int k = 0; k < K; ++k) lsim.set_policy(k, cand[static_cast<std::size_t>(k)]);
      const RunResult r = lsim.run_days(l.days_per_round, lo, nullptr);
      sessions_capped += r.sessions_capped;
      std::vector<double> score(static_cast<std::size_t>(K));
      std::vector<std::int64_t> users(static_cast<std::size_t>(K));
      for (int k = 0; k < K; ++k) {
        double reward = 0;
        for (int d = 0; d < l.days_per_round; ++d) reward += r.metrics.at(k, d).reward;
        users[k] = r.metrics.at(k, 0).users;
        score[k] = users[k] > 0 ? reward / static_cast<double>(users[k]) / l.days_per_round : 0.0;
      }
      learner->observe(score, users);
      const double best = *std::max_element(score.begin(), score.end());
      double mean = 0;
      for (double x : score) mean += x / K;
      M.push_back(plain("online_learning", l.name, "best_candidate_reward_per_user_day", best, round));
      M.push_back(plain("online_learning", l.name, "mean_candidate_reward_per_user_day", mean, round));
      log("learner " + l.name + ": round " + std::to_string(round + 1) + "/" + std::to_string(l.rounds) +
          ", mean candidate reward/user-day " + std::to_string(mean));
    }
    M.push_back(plain("online_learning", l.name, "user_days", static_cast<double>(l.users) * l.rounds * l.days_per_round,
                      std::nullopt, learner->describe().dump()));
    M.push_back(plain("online_learning", l.name, "seconds", seconds_since(tl)));
    policies.emplace_back(l.name, learner->best());
  }
  flush();
  for (const AgentSpec& a : ex.agents)
    if (!failed.count(a.name)) policies.emplace_back(a.name, std::shared_ptr<const Policy>(std::move(agent.at(a.name))));

  // ---- 4. Offline evaluation -----------------------------------------------
  std::map<std::string, std::map<std::string, double>> offline;  // metric -> policy -> value
  if (!ex.gauc_dataset.empty()) {
    const GaucData g = gauc_data(col, dataset_groups(dataset(ex.gauc_dataset)));
    for (std::size_t i = 0; i < policies.size(); ++i) {
      const GaucResult r = policy_gauc(g, *policies[i].second, sc.fusion, sub_seed(sc, kEvalDraws, i));
      offline["weighted_gauc"][policies[i].first] = r.gauc;
      M.push_back(plain("offline", policies[i].first, "weighted_gauc", r.gauc, static_cast<std::int64_t>(g.user.size()),
                        json{{"users_used", r.users_used}, {"users_skipped", r.users_skipped},
                             {"weights_clamped_at_0", g.clamped}}.dump()));
    }
    log("offline: weighted GAUC of " + std::to_string(policies.size()) + " policies on " +
        std::to_string(g.user.size()) + " impressions");
  }
  if (!ex.ope.dataset.empty()) {
    const DatasetSpec& d = dataset(ex.ope.dataset);
    const agents::Dataset data(select_rows(col.transitions, dataset_groups(d), d.time_from * period, d.time_to * period, nullptr));
    for (std::size_t i = 0; i < policies.size(); ++i) {
      for (const std::string& method : ex.ope.methods) {
        const auto t = Clock::now();
        agents::OpeEstimate e;
        try {
        if (method == "ncis") {
          agents::NcisOptions no;
          no.cap = ex.ope.ncis_cap;
          no.bandwidth = ex.ope.ncis_bandwidth;
          no.seed = sub_seed(sc, kOpeSeed, i);
          e = agents::ncis(data, *policies[i].second, no);
        } else {
          agents::FqeOptions fo;
          fo.gamma = ex.ope.gamma;
          fo.steps = ex.ope.steps;
          fo.batch = ex.ope.batch;
          fo.hidden = ex.ope.hidden;
          fo.seed = sub_seed(sc, kOpeSeed, i);
          if (method == "conservative_ope") {
            fo.cql_alpha = ex.ope.cql_alpha;
            e = agents::conservative_ope(data, *policies[i].second, fo);
          } else {
            e = agents::fitted_q_evaluation(data, *policies[i].second, fo);
          }
        }
        } catch (const std::exception& err) {
          // A diverging estimator (likely for targets far outside the data) is a
          // finding, not a reason to lose the run.
          e.value = std::nan("");
          e.details = json{{"error", err.what()}};
        }
        offline[method][policies[i].first] = e.value;
        M.push_back(plain("offline", policies[i].first, method, e.value, e.transitions,
                          json{{"per_step", e.per_step}, {"seconds", seconds_since(t)}, {"details", e.details}}.dump()));
      }
      log("offline: " + policies[i].first + " evaluated (" + std::to_string(data.size()) + " transitions)");
    }
  }

  flush();

  // ---- 5. Online A/B -------------------------------------------------------
  std::map<std::string, std::map<std::string, std::vector<double>>> online;  // metric -> arm -> lifts over reps
  if (ex.ab) {
    const AbSpec& ab = *ex.ab;
    Scenario as = sc;
    as.population.size = ab.users;
    as.days = ab.pre_days + ab.days;
    as.groups.clear();
    std::vector<PolicyPtr> arm_policy;
    int control = 0;
    for (std::size_t k = 0; k < ab.arms.size(); ++k) {
      as.groups.push_back(GroupSpec{ab.arms[k], 1.0, PolicySpec{}});
      for (const auto& p : policies)
        if (p.first == ab.arms[k]) arm_policy.push_back(p.second);
      if (ab.arms[k] == ab.control) control = static_cast<int>(k);
    }
    for (int rep = 0; rep < ab.replicates; ++rep) {
      const auto ta = Clock::now();
      std::vector<PolicyPtr> pre(arm_policy.size(), arm_policy[static_cast<std::size_t>(control)]);
      Simulator asim(as, ab.pre_days > 0 ? pre : arm_policy, sub_seed(sc, kAbUsers, static_cast<std::uint64_t>(rep)));
      asim.track_user_totals(true);
      RunOptions ao;
      ao.threads = opt.threads;
      std::vector<UserTotals> pre_totals;
      if (ab.pre_days > 0) {
        sessions_capped += asim.run_days(ab.pre_days, ao, nullptr).sessions_capped;
        pre_totals = asim.user_totals();
        asim.reset_user_totals();
        for (std::size_t k = 0; k < arm_policy.size(); ++k) asim.set_policy(static_cast<int>(k), arm_policy[k]);
      }
      sessions_capped += asim.run_days(ab.days, ao, nullptr).sessions_capped;
      const ArmValues c = arm_values(asim.user_totals(), asim, control, ab.days);
      std::optional<ArmValues> c_pre;
      if (ab.pre_days > 0) c_pre = arm_values(pre_totals, asim, control, ab.pre_days);
      for (std::size_t k = 0; k < ab.arms.size(); ++k) {
        const ArmValues t = arm_values(asim.user_totals(), asim, static_cast<int>(k), ab.days);
        std::optional<ArmValues> t_pre;
        if (ab.pre_days > 0 && static_cast<int>(k) != control)
          t_pre = arm_values(pre_totals, asim, static_cast<int>(k), ab.pre_days);
        for (const AbMetric& m : ab_metrics()) {
          M.push_back(plain("ab_level", ab.arms[k], m.name, arm_level(t, m), t.users));
          if (static_cast<int>(k) == control) {
            online[m.name][ab.arms[k]].push_back(0.0);
            continue;
          }
          const auto l = lift(c, t, m);
          if (!l) continue;
          M.push_back(lift_row("ab", ab.arms[k], m.name, *l, rep));
          online[m.name][ab.arms[k]].push_back(l->lift);
          if (t_pre && !m.ratio) {
            try {
              const stats::Cuped cu = stats::cuped(c.value.at(m.name), c_pre->value.at(m.name), t.value.at(m.name),
                                                   t_pre->value.at(m.name));
              MetricRow r = lift_row("ab_cuped", ab.arms[k], m.name, stats::mean_lift(cu.control, cu.treatment), rep);
              json d = json::parse(r.details);
              d["theta"] = cu.theta;
              d["variance_reduction"] = cu.variance_reduction;
              r.details = d.dump();
              M.push_back(r);
            } catch (const std::invalid_argument&) {
              // No variance in the pre-period (tiny arms): no CUPED row.
            }
          }
        }
      }
      log("A/B replicate " + std::to_string(rep + 1) + "/" + std::to_string(ab.replicates) + ": " +
          std::to_string(ab.arms.size()) + " arms x " + std::to_string(ab.users / static_cast<std::int64_t>(ab.arms.size())) +
          " users x " + std::to_string(ab.days) + " days, " + std::to_string(seconds_since(ta)).substr(0, 5) + " s");
    }
    for (const auto& [metric, arms] : online)
      for (const auto& [arm, lifts] : arms) {
        if (arm == ab.control) continue;
        const stats::Summary s = stats::summarise(lifts);
        MetricRow r = plain("ab_summary", arm, metric, s.mean, static_cast<std::int64_t>(s.n),
                            json{{"sd", s.sd}, {"min", s.min}, {"max", s.max}}.dump());
        M.push_back(r);
      }

    // ---- 6. Ground truth: offline metrics against the online lifts ---------
    for (const std::string& online_metric : {ab.primary, std::string("reward_per_user_day")}) {
      for (const auto& [metric, values] : offline) {
        std::vector<double> x, y;
        std::string used;
        for (const std::string& arm : ab.arms) {
          const auto it = values.find(arm);
          if (it == values.end() || !std::isfinite(it->second)) continue;
          const auto& lifts = online[online_metric][arm];
          if (lifts.empty()) continue;
          const double mean_lift = stats::summarise(lifts).mean;
          if (!std::isfinite(mean_lift)) continue;
          x.push_back(it->second);
          y.push_back(mean_lift);
          used += (used.empty() ? "" : ", ") + arm;
        }
        const double tau = x.size() >= 2 ? stats::kendall_tau_b(x, y) : std::nan("");
        M.push_back(plain("agreement", metric, online_metric, tau, static_cast<std::int64_t>(x.size()),
                          json{{"policies", used}}.dump()));
      }
    }
  }

  res.wall_seconds = seconds_since(t0);
  M.push_back(plain("run", "all", "wall_seconds", res.wall_seconds));
  M.push_back(plain("run", "all", "sessions_capped", static_cast<double>(sessions_capped)));
  if (sessions_capped > 0)
    log(std::to_string(sessions_capped) + " sessions were ended by the scenario's limits (see docs/scenario-format.md#limits)");
  flush();
  std::vector<SummaryRow> summary;
  rec.finish(summary, res.wall_seconds);
  return res;
}

}  // namespace mtf::experiments
