// Parsing and validation of the "experiment" block (see experiment.h and
// docs/experiments.md), through the shared JSON reader (core/json_reader.h):
// every error reads `<origin>: experiment.<path>: expected <what>, got <found>`,
// and an unknown key names the closest known one.
#include <algorithm>
#include <cmath>
#include <set>

#include "agents/agent.h"
#include "core/json_reader.h"
#include "core/state_features.h"
#include "agents/online/online_learner.h"
#include "sim/policies.h"
#include "experiments/experiment.h"

namespace mtf::experiments {
namespace {

namespace jr = json_reader;
using jr::Node;

/// Re-raises an agent's or learner's hyperparameter error at its place in the
/// experiment block: "<type>.<key>: expected ..., got ..." (agents/hyperparameters.h)
/// becomes "<origin>: <path of the block>.<key>: expected ..., got ...". Other
/// messages (cross-key checks) are reported against the block as a whole.
[[noreturn]] void hyperparameter_error(const Node& block, const std::string& type, const std::string& what,
                                       const std::string& kind) {
  const std::string prefix = type + ".";
  if (what.rfind(prefix, 0) == 0) {
    const std::string& origin = block.origin->name;
    block.origin->fail((origin.empty() ? "" : origin + ": ") + block.path + "." + what.substr(prefix.size()));
  }
  block.fail("hyperparameters the " + kind + " accepts (" + what + ")");
}
using jr::Obj;

/// The keys of an object, in the order nlohmann::json iterates them (sorted):
/// datasets are built in this order, as before the shared reader.
std::vector<std::string> sorted_keys(const Node& n) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : n.value->items()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  return keys;
}

/// An array of at least `min_size` non-empty names.
std::vector<std::string> strings(const Node& n, std::size_t min_size) {
  const std::size_t count = n.array("an array of at least " + std::to_string(min_size) + " names", min_size);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(n.at(i).string());
  return out;
}

template <class T>
void opt_read(const Obj& o, const char* key, T& out, auto&& read) {
  if (const Node n = o.at(key); !n.missing()) out = read(n);
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

RewardParams parse_reward(const Node& n, const RewardParams& base) {
  const Obj o(n, {"play", "valid", "watch_minutes", "finish", "like", "share", "comment", "skip"});
  RewardParams r = base;
  const auto rd = [&](const char* k, double& x) { o.read(k, x, jr::closed(-1e6, 1e6)); };
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

ExperimentSpec parse_experiment(const Scenario& s, const std::string& origin, bool check_hyperparameters) {
  ExperimentSpec e;
  if (s.experiment_json.empty())
    throw ExperimentError(origin + ": the scenario has no \"experiment\" block (see docs/experiments.md)");
  const jr::Value doc = jr::Value::parse(s.experiment_json);
  const jr::Source source{origin, &jr::raise_as<ExperimentError>};
  const Obj top(Node{&doc, "experiment", &source},
                {"progressive", "datasets", "agents", "learners", "offline", "ab", "oracle", "convergence",
                 "exploration_control", "paper", "gamma", "alignment"});
  if (const Node g = top.at("gamma"); !g.missing()) e.gamma = g.number(jr::closed(0, 0.9999));

  std::set<std::string> names{keys::kBaseline};  // policy names: agents, learners, the baseline
  const auto new_name = [&](const Node& a) {
    const std::string n = a.string();
    for (const char* reserved : {keys::kBehaviourPrefix, keys::kDeployedPrefix})
      if (n.rfind(reserved, 0) == 0)
        a.fail(std::string("a name that does not start with \"") + reserved + "\" (the testbed names its own policies so)");
    if (!names.insert(n).second) a.fail("a policy name not used before (\"baseline\" is taken)");
    return n;
  };

  if (const Node datasets = top.at("datasets"); !datasets.missing()) {
    if (!datasets.value->is_object()) datasets.fail("an object {name: {groups, time}}");
    for (const std::string& key : sorted_keys(datasets)) {
      const Obj o(datasets.at(key), {"groups", "time", "formulation", "discount_seconds"});
      DatasetSpec ds;
      ds.name = key;
      ds.groups = strings(o.at("groups"), 1);
      for (std::size_t i = 0; i < ds.groups.size(); ++i)
        if (group_index(s, ds.groups[i]) < 0)
          o.at("groups").at(i).fail("the name of one of the scenario's groups (" + group_names(s) + ")");
      if (const Node t = o.at("time"); !t.missing()) {
        if (!t.value->is_array() || t.value->size() != 2) t.fail("[from, to] as fractions of the exploration period");
        ds.time_from = t.at(std::size_t{0}).number(jr::closed(0, 1));
        ds.time_to = t.at(1).number(jr::closed(0, 1));
        if (!(ds.time_from < ds.time_to)) t.fail("from < to");
      }
      if (const Node f = o.at("formulation"); !f.missing()) {
        const std::string v = f.string();
        if (v != "session" && v != "cross_session")
          f.fail("\"session\" (the papers' session MDP) or \"cross_session\" (a user's sessions chained)");
        ds.cross_session = v == "cross_session";
      }
      if (const Node u = o.at("discount_seconds"); !u.missing()) ds.discount_seconds = u.number(jr::closed(1, 1e7));
      e.datasets.push_back(ds);
    }
  }
  const auto dataset_ref = [&](const Node& a) {
    const std::string n = a.string();
    for (const auto& d : e.datasets)
      if (d.name == n) return n;
    a.fail("the name of a dataset defined under experiment.datasets");
  };

  if (const Node arr = top.at("agents"); !arr.missing()) {
    if (!arr.value->is_array()) arr.fail("an array of agents");
    const auto known = agents::agent_names();
    for (std::size_t i = 0; i < arr.value->size(); ++i) {
      const Obj o(arr.at(i), {"name", "type", "dataset", "steps", "hyperparameters", "reward"});
      AgentSpec a;
      a.name = new_name(o.at("name"));
      a.type = o.at("type").string();
      if (std::find(known.begin(), known.end(), a.type) == known.end()) {
        std::string k;
        for (const auto& n : known) k += (k.empty() ? "" : ", ") + n;
        const std::vector<std::string_view> kv(known.begin(), known.end());
        const std::string_view near = jr::closest(a.type, kv);
        o.at("type").fail("an agent type: " + k + (near.empty() ? "" : " (did you mean " + jr::in_quotes(near) + "?)"));
      }
      a.dataset = dataset_ref(o.at("dataset"));
      opt_read(o, "steps", a.steps, [](const Node& x) { return x.integer(jr::int_range(1, 100000000)); });
      if (const Node h = o.at("hyperparameters"); !h.missing()) {
        if (!h.value->is_object()) h.fail("an object");
        a.hyperparameters = nlohmann::json(*h.value);
        // Validated now (make_agent throws naming the key), not after the exploration.
        if (check_hyperparameters) try {
          (void)agents::make_agent(a.type, a.hyperparameters, kStateDim, s.action_dim(), 1);
        } catch (const std::invalid_argument& ex) {
          hyperparameter_error(h, a.type, ex.what(), "agent");
        }
      }
      if (const Node r = o.at("reward"); !r.missing()) a.reward = parse_reward(r, s.reward);
      // The protocol's gamma, for agents that have one and were not given their own.
      if (e.gamma && !a.hyperparameters.contains("gamma") &&
          agents::make_agent(a.type, {{"hidden", {1}}}, kStateDim, s.action_dim(), 1)  // tiny: only its keys
              ->hyperparameters()
              .contains("gamma"))
        a.hyperparameters["gamma"] = *e.gamma;
      e.agents.push_back(std::move(a));
    }
  }

  if (const Node arr = top.at("progressive"); !arr.missing()) {
    if (!arr.value->is_array()) arr.fail("an array of {group, agent, rounds}");
    for (std::size_t i = 0; i < arr.value->size(); ++i) {
      const Obj o(arr.at(i), {"group", "agent", "rounds", "accept", "holdout", "check"});
      ProgressiveSpec p;
      p.group = o.at("group").string();
      const int g = group_index(s, p.group);
      if (g < 0) o.at("group").fail("the name of one of the scenario's groups (" + group_names(s) + ")");
      if (s.groups[g].policy.kind != PolicyKind::kBoundedUniform)
        o.at("group").fail("a group whose policy is bounded_uniform (progressive rounds re-centre its bounds)");
      p.agent = o.at("agent").string();
      if (std::none_of(e.agents.begin(), e.agents.end(), [&](const AgentSpec& a) { return a.name == p.agent; }))
        o.at("agent").fail("the name of an agent under experiment.agents");
      o.read("rounds", p.rounds, jr::int_range(1, 64));
      if (s.days % p.rounds != 0)
        o.at("rounds").fail("a divisor of the scenario's days (" + std::to_string(s.days) + ")");
      if (const Node a = o.at("accept"); !a.missing()) {
        const std::string v = a.string();
        if (v != "always" && v != "if_better")
          a.fail("\"always\" (each round's agent becomes the baseline) or \"if_better\" (only when an off-policy "
                 "estimate on held-out users rates it above the deployed baseline)");
        p.accept_if_better = v == "if_better";
      }
      o.read("holdout", p.holdout, jr::closed(0.01, 0.9));
      if (const Node c = o.at("check"); !c.missing()) {
        p.check = c.string();
        if (p.check != keys::kFqe && p.check != keys::kConservativeOpe) c.fail("\"fqe\" or \"conservative_ope\"");
      }
      if (!p.accept_if_better && (!o.at("holdout").missing() || !o.at("check").missing()))
        o.node().fail("\"accept\": \"if_better\" with \"holdout\" or \"check\" (they set the acceptance test)");
      e.progressive.push_back(p);
    }
  }

  if (const Node arr = top.at("learners"); !arr.missing()) {
    if (!arr.value->is_array()) arr.fail("an array of online learners");
    for (std::size_t i = 0; i < arr.value->size(); ++i) {
      const Obj o(arr.at(i), {"name", "type", "rounds", "days_per_round", "users", "hyperparameters"});
      LearnerSpec l;
      l.name = new_name(o.at("name"));
      l.type = o.at("type").string();
      if (l.type != "es" && l.type != "bo" && l.type != "grid") o.at("type").fail("\"es\", \"bo\" or \"grid\"");
      o.read("rounds", l.rounds, jr::int_range(1, 60));
      o.read("days_per_round", l.days_per_round, jr::int_range(1, 30));
      opt_read(o, "users", l.users, [](const Node& x) { return x.integer(jr::int_range(10, 100000000)); });
      if (const Node h = o.at("hyperparameters"); !h.missing()) {
        if (!h.value->is_object()) h.fail("an object");
        l.hyperparameters = nlohmann::json(*h.value);
      }
      // Validated now, not after the exploration: the learner's own checks, and
      // one simulator group per candidate (at most 255).
      if (check_hyperparameters) try {
        const auto learner = agents::make_online_learner(l.type, l.hyperparameters, kStateDim, s.action_dim(),
                                                         std::make_shared<BaselinePolicy>(s.fusion), 1);
        if (learner->candidates_per_round() > 255)
          o.at("hyperparameters").fail("at most 255 candidates per round (one simulator group each)");
      } catch (const std::invalid_argument& ex) {
        const Node h = o.at("hyperparameters");
        if (h.missing()) o.node().fail(std::string("a learner its type accepts (") + ex.what() + ")");
        hyperparameter_error(h, l.type, ex.what(), "learner");
      }
      e.learners.push_back(std::move(l));
    }
  }

  // The protocol's gamma is the estimators' default also without an offline
  // block (a progressive acceptance test uses offline.ope's settings).
  if (e.gamma) e.ope.gamma = *e.gamma;
  if (const Node off = top.at("offline"); !off.missing()) {
    const Obj o(off, {"gauc", "ope"});
    if (const Node g = o.at("gauc"); !g.missing()) e.gauc_dataset = dataset_ref(g);
    if (const Node ope = o.at("ope"); !ope.missing()) {
      const Obj p(ope,
                  {"dataset", "extra_datasets", "methods", "steps", "batch", "hidden", "gamma", "tau", "cql_alpha", "ncis_cap",
                   "ncis_bandwidth", "reward_scale"});
      e.ope.dataset = dataset_ref(p.at("dataset"));
      if (const Node x = p.at("extra_datasets"); !x.missing()) {
        if (!x.value->is_array()) x.fail("an array of dataset names");
        for (std::size_t i = 0; i < x.value->size(); ++i) {
          const std::string name = dataset_ref(x.at(i));
          if (name == e.ope.dataset ||
              std::find(e.ope.extra_datasets.begin(), e.ope.extra_datasets.end(), name) != e.ope.extra_datasets.end())
            x.at(i).fail("a dataset not already evaluated (offline.ope.dataset and each earlier entry)");
          e.ope.extra_datasets.push_back(name);
        }
      }
      if (const Node m = p.at("methods"); !m.missing()) {
        e.ope.methods = strings(m, 1);
        for (std::size_t i = 0; i < e.ope.methods.size(); ++i) {
          const auto& name = e.ope.methods[i];
          if (name != keys::kConservativeOpe && name != keys::kFqe && name != keys::kNcis)
            m.at(i).fail("\"conservative_ope\", \"fqe\" or \"ncis\"");
        }
      }
      opt_read(p, "steps", e.ope.steps, [](const Node& x) { return x.integer(jr::int_range(1, 10000000)); });
      p.read("batch", e.ope.batch, jr::int_range(1, 65536));
      p.read("hidden", e.ope.hidden, jr::int_range(1, 4096));
      p.read("gamma", e.ope.gamma, jr::closed(0, 0.9999));
      p.read("tau", e.ope.tau, jr::closed(1e-6, 1));
      p.read("cql_alpha", e.ope.cql_alpha, jr::closed(0, 1e6));
      p.read("ncis_cap", e.ope.ncis_cap, jr::closed(1, 1e12));
      p.read("ncis_bandwidth", e.ope.ncis_bandwidth, jr::closed(1e-6, 10));
      if (const Node r = p.at("reward_scale"); !r.missing()) {
        const std::string v = r.string();
        if (v != "none" && v != "mean_abs")
          r.fail("\"none\" (rewards as recorded) or \"mean_abs\" (divided by the evaluation set's mean |reward| during "
                 "the fits, so that cql_alpha means the same on any world)");
        e.ope.reward_scale_mean_abs = v == "mean_abs";
      }
    }
  }

  if (const Node c = top.at("exploration_control"); !c.missing()) {
    e.exploration_control = c.string();
    if (group_index(s, e.exploration_control) < 0)
      c.fail("the name of one of the scenario's groups (" + group_names(s) + ")");
  }

  if (const Node abn = top.at("ab"); !abn.missing()) {
    const Obj o(abn, {"days", "pre_days", "users", "replicates", "control", "arms", "primary"});
    AbSpec ab;
    o.read("days", ab.days, jr::int_range(1, 60));
    o.read("pre_days", ab.pre_days, jr::int_range(0, 3));
    opt_read(o, "users", ab.users, [](const Node& x) { return x.integer(jr::int_range(10, 100000000)); });
    o.read("replicates", ab.replicates, jr::int_range(1, 100));
    ab.arms = strings(o.at("arms"), 2);
    for (std::size_t i = 0; i < ab.arms.size(); ++i)
      if (!names.count(ab.arms[i]))
        o.at("arms").at(i).fail("\"baseline\" or the name of an agent or learner of this experiment");
    if (std::set<std::string>(ab.arms.begin(), ab.arms.end()).size() != ab.arms.size())
      o.at("arms").fail("distinct arm names");
    ab.control = o.at("control").string();
    if (std::find(ab.arms.begin(), ab.arms.end(), ab.control) == ab.arms.end())
      o.at("control").fail("one of the arms");
    if (const Node primary = o.at("primary"); !primary.missing()) {
      ab.primary = primary.string();
      const auto& ms = ab_metrics();
      if (std::none_of(ms.begin(), ms.end(), [&](const AbMetric& m) { return ab.primary == m.name; })) {
        std::string k;
        for (const auto& m : ms) k += (k.empty() ? "" : ", ") + std::string(m.name);
        primary.fail("one of the A/B metrics: " + k);
      }
    }
    if (ab.days + ab.pre_days > 64) o.at("days").fail("days + pre_days <= 64");
    e.ab = ab;
  }
  if (const Node on = top.at("oracle"); !on.missing()) {
    const Obj o(on, {"users", "days", "gamma"});
    OracleSpec os;
    opt_read(o, "users", os.users, [](const Node& x) { return x.integer(jr::int_range(2, 100000000)); });
    o.read("days", os.days, jr::int_range(1, 60));
    if (e.gamma) os.gamma = *e.gamma;
    o.read("gamma", os.gamma, jr::closed(0, 1));
    e.oracle = os;
  }
  if (const Node on = top.at("alignment"); !on.missing()) {
    const Obj o(on, {"actions", "users", "days", "gammas"});
    AlignmentSpec as;
    o.read("actions", as.actions, jr::int_range(2, 1000));
    opt_read(o, "users", as.users, [](const Node& x) { return x.integer(jr::int_range(2, 100000000)); });
    o.read("days", as.days, jr::int_range(1, 60));
    if (const Node g = o.at("gammas"); !g.missing()) {
      if (!g.value->is_array() || g.value->empty() || g.value->size() > 16) g.fail("an array of 1 to 16 gammas");
      as.gammas.clear();
      for (std::size_t i = 0; i < g.value->size(); ++i) as.gammas.push_back(g.at(i).number(jr::closed(0, 1)));
    }
    e.alignment = as;
  }
  if (const Node on = top.at("convergence"); !on.missing()) {
    const Obj o(on, {"first_step", "min_step", "users", "days", "window", "tolerance_percent", "stop"});
    ConvergenceSpec cs;
    opt_read(o, "first_step", cs.first_step, [](const Node& x) { return x.integer(jr::int_range(1, 100000000)); });
    opt_read(o, "min_step", cs.min_step, [](const Node& x) { return x.integer(jr::int_range(0, 100000000)); });
    opt_read(o, "users", cs.users, [](const Node& x) { return x.integer(jr::int_range(2, 100000000)); });
    o.read("days", cs.days, jr::int_range(1, 60));
    o.read("window", cs.window, jr::int_range(2, 20));
    o.read("tolerance_percent", cs.tolerance_percent, jr::closed(0, 100));
    opt_read(o, "stop", cs.stop, [](const Node& x) { return x.boolean(); });
    if (e.agents.empty()) on.fail("no convergence block: the experiment has no agents to train");
    e.convergence = cs;
  }
  if (const Node paper = top.at("paper"); !paper.missing()) {
    const Obj p(paper, {"source", "offline", "online", "notes"});
    // The report prints these as text.
    if (const Node n = p.at("source"); !n.missing()) (void)n.string();
    if (const Node n = p.at("notes"); !n.missing()) (void)n.string();
    e.paper = nlohmann::json(*paper.value);
  }
  if ((!e.agents.empty() || !e.ope.dataset.empty() || !e.gauc_dataset.empty()) && !s.record.transitions)
    throw ExperimentError(origin + ": record.transitions: expected true: the experiment's agents and offline "
                                   "metrics learn from the recorded transitions");
  if (e.gauc_dataset.empty() && e.ope.dataset.empty() && !e.ab && !e.oracle && !e.alignment && e.agents.empty() &&
      e.learners.empty())
    top.node().fail("at least one of agents, learners, offline, oracle, alignment or ab");
  return e;
}


}  // namespace mtf::experiments
