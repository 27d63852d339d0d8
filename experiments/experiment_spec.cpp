// Parsing and validation of the "experiment" block (see experiment.h and
// docs/experiments.md). Every error names the JSON path, what was expected and
// what was found.
#include <algorithm>
#include <cmath>
#include <set>

#include "agents/agent.h"
#include "agents/online/online_learner.h"
#include "sim/policies.h"
#include "sim/state_features.h"
#include "experiments/experiment.h"

namespace mtf::experiments {
namespace {

using Json = nlohmann::json;

/// A JSON value and its path, for messages.
struct At {
  const Json* v = nullptr;
  std::string path;
  const std::string* origin = nullptr;

  [[noreturn]] void fail(const std::string& expected) const {
    const std::string got = v ? v->dump().substr(0, 80) : std::string("nothing (the key is required)");
    throw ExperimentError(*origin + ": experiment" + path + ": expected " + expected + ", got " + got);
  }
  bool has(const char* key) const { return v->contains(key); }
  At at(const char* key) const {
    auto it = v->find(key);
    return {it == v->end() ? nullptr : &*it, path + "." + key, origin};
  }
  At at(std::size_t i) const { return {&(*v)[i], path + "[" + std::to_string(i) + "]", origin}; }
  /// An object whose keys are all in `allowed`.
  void object(const std::vector<std::string>& allowed) const {
    if (!v || !v->is_object()) fail("an object");
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
        std::string known;
        for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
        throw ExperimentError(*origin + ": experiment" + path + "." + it.key() +
                              ": unknown key; the known keys are " + known);
      }
    }
  }
  std::string string() const {
    if (!v || !v->is_string() || v->get<std::string>().empty()) fail("a non-empty string");
    return v->get<std::string>();
  }
  double number(double lo, double hi) const {
    if (!v || !v->is_number() || !(v->get<double>() >= lo && v->get<double>() <= hi))
      fail("a number in [" + Json(lo).dump() + ", " + Json(hi).dump() + "]");
    return v->get<double>();
  }
  std::int64_t integer(std::int64_t lo, std::int64_t hi) const {
    if (!v || !v->is_number_integer() || v->get<std::int64_t>() < lo || v->get<std::int64_t>() > hi)
      fail("an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v->get<std::int64_t>();
  }
  std::vector<std::string> strings(std::size_t min_size) const {
    if (!v || !v->is_array() || v->size() < min_size)
      fail("an array of at least " + std::to_string(min_size) + " names");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v->size(); ++i) out.push_back(at(i).string());
    return out;
  }
};

template <class T>
void opt_read(const At& o, const char* key, T& out, auto&& read) {
  if (o.has(key)) out = read(o.at(key));
}

int group_index(const Scenario& s, const std::string& name) {
  for (std::size_t g = 0; g < s.groups.size(); ++g)
    if (s.groups[g].name == name) return static_cast<int>(g);
  return -1;
}

std::string group_names(const Scenario& s) {
  std::string out;
  for (const auto& g : s.groups) out += (out.empty() ? "" : ", ") + g.name;
  return out;
}

RewardParams parse_reward(const At& o, const RewardParams& base) {
  o.object({"play", "valid", "watch_minutes", "finish", "like", "share", "comment", "skip"});
  RewardParams r = base;
  const auto rd = [&](const char* k, double& x) { opt_read(o, k, x, [](const At& a) { return a.number(-1e6, 1e6); }); };
  rd("play", r.play);
  rd("valid", r.valid);
  rd("watch_minutes", r.watch_minutes);
  rd("finish", r.finish);
  rd("like", r.like);
  rd("share", r.share);
  rd("comment", r.comment);
  rd("skip", r.skip);
  return r;
}

}  // namespace

ExperimentSpec parse_experiment(const Scenario& s, const std::string& origin) {
  ExperimentSpec e;
  if (s.experiment_json.empty())
    throw ExperimentError(origin + ": the scenario has no \"experiment\" block (see docs/experiments.md)");
  const Json doc = Json::parse(s.experiment_json);
  const At top{&doc, "", &origin};
  top.object({"progressive", "datasets", "agents", "learners", "offline", "ab", "exploration_control", "paper"});

  std::set<std::string> names{"baseline"};  // policy names: agents, learners, the baseline
  const auto new_name = [&](const At& a) {
    const std::string n = a.string();
    if (!names.insert(n).second) a.fail("a policy name not used before (\"baseline\" is taken)");
    return n;
  };

  if (top.has("datasets") && !top.at("datasets").v->is_object())
    top.at("datasets").fail("an object {name: {groups, time}}");
  if (top.has("datasets")) {
    const Json& obj = *top.at("datasets").v;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const At o{&it.value(), ".datasets." + it.key(), &origin};
      o.object({"groups", "time"});
      DatasetSpec ds;
      ds.name = it.key();
      ds.groups = o.at("groups").strings(1);
      for (std::size_t i = 0; i < ds.groups.size(); ++i)
        if (group_index(s, ds.groups[i]) < 0)
          o.at("groups").at(i).fail("the name of one of the scenario's groups (" + group_names(s) + ")");
      if (o.has("time")) {
        const At t = o.at("time");
        if (!t.v->is_array() || t.v->size() != 2) t.fail("[from, to] as fractions of the exploration period");
        ds.time_from = t.at(std::size_t{0}).number(0, 1);
        ds.time_to = t.at(1).number(0, 1);
        if (!(ds.time_from < ds.time_to)) t.fail("from < to");
      }
      e.datasets.push_back(ds);
    }
  }
  const auto dataset_ref = [&](const At& a) {
    const std::string n = a.string();
    for (const auto& d : e.datasets)
      if (d.name == n) return n;
    a.fail("the name of a dataset defined under experiment.datasets");
  };

  if (top.has("agents")) {
    const At arr = top.at("agents");
    if (!arr.v->is_array()) arr.fail("an array of agents");
    const auto known = agents::agent_names();
    for (std::size_t i = 0; i < arr.v->size(); ++i) {
      const At o = arr.at(i);
      o.object({"name", "type", "dataset", "steps", "hyperparameters", "reward"});
      AgentSpec a;
      a.name = new_name(o.at("name"));
      a.type = o.at("type").string();
      if (std::find(known.begin(), known.end(), a.type) == known.end()) {
        std::string k;
        for (const auto& n : known) k += (k.empty() ? "" : ", ") + n;
        o.at("type").fail("an agent type: " + k);
      }
      a.dataset = dataset_ref(o.at("dataset"));
      opt_read(o, "steps", a.steps, [](const At& x) { return x.integer(1, 100000000); });
      if (o.has("hyperparameters")) {
        if (!o.at("hyperparameters").v->is_object()) o.at("hyperparameters").fail("an object");
        a.hyperparameters = *o.at("hyperparameters").v;
        // Validated now (make_agent throws naming the key), not after the exploration.
        try {
          (void)agents::make_agent(a.type, a.hyperparameters, 32, s.action_dim(), 1);
        } catch (const std::invalid_argument& ex) {
          o.at("hyperparameters").fail(std::string("hyperparameters the agent accepts (") + ex.what() + ")");
        }
      }
      if (o.has("reward")) a.reward = parse_reward(o.at("reward"), s.reward);
      e.agents.push_back(std::move(a));
    }
  }

  if (top.has("progressive")) {
    const At arr = top.at("progressive");
    if (!arr.v->is_array()) arr.fail("an array of {group, agent, rounds}");
    for (std::size_t i = 0; i < arr.v->size(); ++i) {
      const At o = arr.at(i);
      o.object({"group", "agent", "rounds"});
      ProgressiveSpec p;
      p.group = o.at("group").string();
      const int g = group_index(s, p.group);
      if (g < 0) o.at("group").fail("the name of one of the scenario's groups (" + group_names(s) + ")");
      if (s.groups[g].policy.kind != PolicyKind::kBoundedUniform)
        o.at("group").fail("a group whose policy is bounded_uniform (progressive rounds re-centre its bounds)");
      p.agent = o.at("agent").string();
      if (std::none_of(e.agents.begin(), e.agents.end(), [&](const AgentSpec& a) { return a.name == p.agent; }))
        o.at("agent").fail("the name of an agent under experiment.agents");
      opt_read(o, "rounds", p.rounds, [](const At& x) { return static_cast<int>(x.integer(1, 64)); });
      if (s.days % p.rounds != 0)
        o.at("rounds").fail("a divisor of the scenario's days (" + std::to_string(s.days) + ")");
      e.progressive.push_back(p);
    }
  }

  if (top.has("learners")) {
    const At arr = top.at("learners");
    if (!arr.v->is_array()) arr.fail("an array of online learners");
    for (std::size_t i = 0; i < arr.v->size(); ++i) {
      const At o = arr.at(i);
      o.object({"name", "type", "rounds", "days_per_round", "users", "hyperparameters"});
      LearnerSpec l;
      l.name = new_name(o.at("name"));
      l.type = o.at("type").string();
      if (l.type != "es" && l.type != "bo" && l.type != "grid") o.at("type").fail("\"es\", \"bo\" or \"grid\"");
      opt_read(o, "rounds", l.rounds, [](const At& x) { return static_cast<int>(x.integer(1, 60)); });
      opt_read(o, "days_per_round", l.days_per_round, [](const At& x) { return static_cast<int>(x.integer(1, 30)); });
      opt_read(o, "users", l.users, [](const At& x) { return x.integer(10, 100000000); });
      if (o.has("hyperparameters")) {
        if (!o.at("hyperparameters").v->is_object()) o.at("hyperparameters").fail("an object");
        l.hyperparameters = *o.at("hyperparameters").v;
      }
      // Validated now, not after the exploration: the learner's own checks, and
      // one simulator group per candidate (at most 255).
      try {
        const auto learner = agents::make_online_learner(l.type, l.hyperparameters, kStateDim, s.action_dim(),
                                                         std::make_shared<BaselinePolicy>(s.fusion), 1);
        if (learner->candidates_per_round() > 255)
          o.at("hyperparameters").fail("at most 255 candidates per round (one simulator group each)");
      } catch (const std::invalid_argument& ex) {
        o.at("hyperparameters").fail(std::string("hyperparameters the learner accepts (") + ex.what() + ")");
      }
      e.learners.push_back(std::move(l));
    }
  }

  if (top.has("offline")) {
    const At o = top.at("offline");
    o.object({"gauc", "ope"});
    if (o.has("gauc")) e.gauc_dataset = dataset_ref(o.at("gauc"));
    if (o.has("ope")) {
      const At p = o.at("ope");
      p.object({"dataset", "methods", "steps", "batch", "hidden", "gamma", "cql_alpha", "ncis_cap", "ncis_bandwidth"});
      e.ope.dataset = dataset_ref(p.at("dataset"));
      if (p.has("methods")) {
        e.ope.methods = p.at("methods").strings(1);
        for (std::size_t i = 0; i < e.ope.methods.size(); ++i) {
          const auto& m = e.ope.methods[i];
          if (m != "conservative_ope" && m != "fqe" && m != "ncis")
            p.at("methods").at(i).fail("\"conservative_ope\", \"fqe\" or \"ncis\"");
        }
      }
      opt_read(p, "steps", e.ope.steps, [](const At& x) { return x.integer(1, 10000000); });
      opt_read(p, "batch", e.ope.batch, [](const At& x) { return static_cast<int>(x.integer(1, 65536)); });
      opt_read(p, "hidden", e.ope.hidden, [](const At& x) { return static_cast<int>(x.integer(1, 4096)); });
      opt_read(p, "gamma", e.ope.gamma, [](const At& x) { return x.number(0, 0.9999); });
      opt_read(p, "cql_alpha", e.ope.cql_alpha, [](const At& x) { return x.number(0, 1e6); });
      opt_read(p, "ncis_cap", e.ope.ncis_cap, [](const At& x) { return x.number(1, 1e12); });
      opt_read(p, "ncis_bandwidth", e.ope.ncis_bandwidth, [](const At& x) { return x.number(1e-6, 10); });
    }
  }

  if (top.has("exploration_control")) {
    e.exploration_control = top.at("exploration_control").string();
    if (group_index(s, e.exploration_control) < 0)
      top.at("exploration_control").fail("the name of one of the scenario's groups (" + group_names(s) + ")");
  }

  if (top.has("ab")) {
    const At o = top.at("ab");
    o.object({"days", "pre_days", "users", "replicates", "control", "arms", "primary"});
    AbSpec ab;
    opt_read(o, "days", ab.days, [](const At& x) { return static_cast<int>(x.integer(1, 60)); });
    opt_read(o, "pre_days", ab.pre_days, [](const At& x) { return static_cast<int>(x.integer(0, 3)); });
    opt_read(o, "users", ab.users, [](const At& x) { return x.integer(10, 100000000); });
    opt_read(o, "replicates", ab.replicates, [](const At& x) { return static_cast<int>(x.integer(1, 100)); });
    ab.arms = o.at("arms").strings(2);
    for (std::size_t i = 0; i < ab.arms.size(); ++i)
      if (!names.count(ab.arms[i]))
        o.at("arms").at(i).fail("\"baseline\" or the name of an agent or learner of this experiment");
    if (std::set<std::string>(ab.arms.begin(), ab.arms.end()).size() != ab.arms.size())
      o.at("arms").fail("distinct arm names");
    ab.control = o.at("control").string();
    if (std::find(ab.arms.begin(), ab.arms.end(), ab.control) == ab.arms.end())
      o.at("control").fail("one of the arms");
    if (o.has("primary")) {
      ab.primary = o.at("primary").string();
      const auto& ms = ab_metrics();
      if (std::none_of(ms.begin(), ms.end(), [&](const AbMetric& m) { return ab.primary == m.name; })) {
        std::string k;
        for (const auto& m : ms) k += (k.empty() ? "" : ", ") + std::string(m.name);
        o.at("primary").fail("one of the A/B metrics: " + k);
      }
    }
    if (ab.days + ab.pre_days > 64) o.at("days").fail("days + pre_days <= 64");
    e.ab = ab;
  }
  if (top.has("paper")) {
    top.at("paper").object({"source", "offline", "online", "notes"});
    e.paper = *top.at("paper").v;
  }
  if ((!e.agents.empty() || !e.ope.dataset.empty() || !e.gauc_dataset.empty()) && !s.record.transitions)
    throw ExperimentError(origin + ": record.transitions: expected true: the experiment's agents and offline "
                                   "metrics learn from the recorded transitions");
  if (e.gauc_dataset.empty() && e.ope.dataset.empty() && !e.ab && e.agents.empty() && e.learners.empty())
    top.fail("at least one of agents, learners, offline or ab");
  return e;
}

const std::vector<AbMetric>& ab_metrics() {
  static const std::vector<AbMetric> m = {
      {"valid_per_user_day", "valid consumption / user-day", false},
      {"watch_s_per_user_day", "duration time (watch s) / user-day", false},
      {"dwell_s_per_user_day", "app dwell time (s) / user-day", false},
      {"reward_per_user_day", "reward (Formula 2) / user-day", false},
      {"active_day_share", "active days / user-days", false},
      {"positive_rate", "positive interactions / play", true},
      {"return_rate", "next-day return rate", true},
  };
  return m;
}

}  // namespace mtf::experiments
