// The compiled part of the Python module mtfsim (mtfsim._core): runs of a
// scenario with Python callables as group policies, run databases as numpy
// arrays, and the stepper under mtfsim.VectorEnv. The package's Python files
// (python/package/mtfsim/) turn scenarios given as paths, text or dicts into these
// calls and build the Gymnasium-style environment around the stepper.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "arrays.h"
#include "core/state_features.h"
#include "experiments/simulation.h"
#include "python_policy.h"
#include "sim/fusion.h"
#include "sim/policies.h"
#include "sim/scenario.h"
#include "sim/simulator.h"

namespace py = pybind11;

namespace mtf::python {
namespace {

Scenario load(const std::string& scenario, bool is_path, std::optional<std::uint64_t> seed) {
  Scenario sc = is_path ? load_scenario(scenario) : parse_scenario(scenario, "scenario");
  if (seed) sc.seed = *seed;
  return sc;
}

int group_index(const Scenario& sc, const std::string& name, const std::string& where) {
  std::string names;
  for (std::size_t g = 0; g < sc.groups.size(); ++g) {
    if (sc.groups[g].name == name) return static_cast<int>(g);
    names += (g ? ", \"" : "\"") + sc.groups[g].name + "\"";
  }
  throw py::key_error(where + ": \"" + name + "\" is not a group of scenario " + sc.name + " (its groups: " + names + ")");
}

py::dict run(const std::string& scenario, bool is_path, const std::string& out, int threads,
             std::optional<std::uint64_t> seed, const py::dict& policies, bool replace_any_file) {
  const Scenario sc = load(scenario, is_path, seed);
  if (!sc.experiment_json.empty())
    throw py::value_error("run: scenario " + sc.name + " has an \"experiment\" block; run its protocol with "
                          "`mtfsim run` (mtfsim.run simulates plain scenarios)");
  if (threads < 1 || threads > 256) throw py::value_error("run: threads must be in 1 .. 256, got " + std::to_string(threads));
  experiments::SimulationOptions so;
  so.threads = threads;
  so.out = out;
  so.replace_any_file = replace_any_file;
  const auto lock = std::make_shared<std::mutex>();
  for (const auto& [key, fn] : policies) {
    const std::string name = py::cast<std::string>(py::str(key));
    const int g = group_index(sc, name, "run: policies");
    if (!PyCallable_Check(fn.ptr()))
      throw py::type_error("run: policies[\"" + name + "\"]: expected a callable (states -> actions), got " +
                           std::string(py::str(py::type::of(fn).attr("__name__"))));
    so.policies[g] = std::make_shared<PythonPolicy>(fn, name, sc.action_dim(), lock);
  }
  so.on_progress = [](const Progress&) {  // Ctrl-C between blocks
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  };
  experiments::SimulationResult res;
  {
    py::gil_scoped_release release;
    res = experiments::run_simulation(sc, so);
  }
  py::dict summary;
  for (const SummaryRow& s : res.summary) {
    const py::str name(s.name);
    if (!summary.contains(name)) summary[name] = py::dict();
    summary[name][py::str(s.metric)] = s.value;
  }
  py::dict policy_names;
  for (const GroupSummary& g : res.run.groups) policy_names[py::str(g.name)] = g.policy;
  py::list lifts;
  for (const GroupLift& l : res.lifts) {
    py::dict row;
    row["group"] = sc.groups[static_cast<std::size_t>(l.group)].name;
    row["metric"] = l.metric->name;
    row["control"] = l.control;
    row["treatment"] = l.treatment;
    row["lift"] = l.lift ? py::object(py::float_(l.lift->lift)) : py::none();
    row["ci_low"] = l.lift ? py::object(py::float_(l.lift->ci_low)) : py::none();
    row["ci_high"] = l.lift ? py::object(py::float_(l.lift->ci_high)) : py::none();
    row["p_value"] = l.lift ? py::object(py::float_(l.lift->p_value)) : py::none();
    lifts.append(row);
  }
  py::dict result;
  result["scenario"] = sc.name;
  result["seed"] = sc.seed;
  result["users"] = sc.population.size;
  result["days"] = sc.days;
  result["requests"] = res.run.requests;
  result["sessions"] = res.run.sessions;
  result["wall_seconds"] = res.run.wall_seconds;
  result["summary"] = summary;
  result["policies"] = policy_names;
  result["lifts"] = lifts;
  result["out"] = out.empty() ? py::object(py::none()) : py::object(py::str(out));
  return result;
}

/// The users of one group stepped request by request (Simulator::Stepper) for
/// mtfsim.VectorEnv, which checks the actions and shapes the results.
class StepperCore {
 public:
  StepperCore(const std::string& scenario, bool is_path, std::optional<std::uint64_t> seed, const std::string& group,
              std::optional<std::int64_t> num_envs, std::uint64_t user_seed) {
    Scenario sc = load(scenario, is_path, seed);
    // The terminal state of a session comes from its transition row; nothing else is kept.
    sc.record.transitions = true;
    sc.record.impressions = false;
    group_ = group.empty() ? 0 : group_index(sc, group, "VectorEnv: group");
    d_ = sc.action_dim();
    // The simulator's own policies never act (every request is answered with
    // the stepper's actions): constants, so that agent groups load nothing.
    std::vector<PolicyPtr> placeholders(sc.groups.size(),
                                        std::make_shared<ConstantPolicy>(std::vector<float>(static_cast<std::size_t>(d_), 0.0f)));
    sim_ = std::make_unique<Simulator>(std::move(sc), std::move(placeholders), user_seed);
    if (num_envs && *num_envs < 1)
      throw py::value_error("VectorEnv: num_envs=" + std::to_string(*num_envs) + ": expected at least 1 (or None: "
                            "every user of the group)");
    std::vector<std::int64_t> users;
    const std::int64_t population = sim_->population().size();
    for (std::int64_t u = 0; u < population && (!num_envs || static_cast<std::int64_t>(users.size()) < *num_envs); ++u)
      if (sim_->group_of(u) == group_) users.push_back(u);
    const std::string gname = sim_->scenario().groups[static_cast<std::size_t>(group_)].name;
    if (num_envs && static_cast<std::int64_t>(users.size()) < *num_envs)
      throw py::value_error("VectorEnv: num_envs=" + std::to_string(*num_envs) + ": group \"" + gname + "\" has " +
                            std::to_string(users.size()) + " users; ask for 1 .. " + std::to_string(users.size()) +
                            " or enlarge population.size");
    if (users.empty()) throw py::value_error("VectorEnv: group \"" + gname + "\" has no users");
    py::gil_scoped_release release;
    stepper_ = std::make_unique<Simulator::Stepper>(*sim_, std::move(users));
  }

  std::size_t size() const { return stepper_->size(); }
  int action_dim() const { return d_; }
  std::string group_name() const { return sim_->scenario().groups[static_cast<std::size_t>(group_)].name; }

  py::array_t<float> observations() const {
    py::array_t<float> obs({size(), static_cast<std::size_t>(kStateDim)});
    float* p = obs.mutable_data();
    for (std::size_t k = 0; k < size(); ++k, p += kStateDim)
      std::memcpy(p, stepper_->state(k).data(), kStateDim * sizeof(float));
    return obs;
  }

  /// The pending requests: user, session, step, day, time per slot.
  py::dict requests() const {
    const auto n = static_cast<py::ssize_t>(size());
    py::array_t<std::int64_t> user(n);
    py::array_t<std::int32_t> session(n), step(n), day(n);
    py::array_t<double> time(n);
    for (std::size_t k = 0; k < size(); ++k) {
      const Simulator::Stepper::Request r = stepper_->request(k);
      user.mutable_data()[k] = r.user;
      session.mutable_data()[k] = r.session;
      step.mutable_data()[k] = r.step;
      day.mutable_data()[k] = r.day;
      time.mutable_data()[k] = r.time;
    }
    py::dict out;
    out["user"] = user;
    out["session"] = session;
    out["step"] = step;
    out["day"] = day;
    out["time"] = time;
    return out;
  }

  /// Answers every slot's request: (rewards, terminated, next states).
  py::tuple step(py::handle actions) {
    const std::size_t n = size(), d = static_cast<std::size_t>(d_);
    const auto a = checked_actions(actions, n, d, "VectorEnv.step: actions");
    py::array_t<double> rewards(static_cast<py::ssize_t>(n));
    py::array_t<bool> done(static_cast<py::ssize_t>(n));
    py::array_t<float> next({n, static_cast<std::size_t>(kStateDim)});
    {
      const float* in = a.data();
      double* r = rewards.mutable_data();
      bool* t = done.mutable_data();
      float* s = next.mutable_data();
      py::gil_scoped_release release;
      for (std::size_t k = 0; k < n; ++k) {
        const Simulator::Stepper::Outcome o = stepper_->step(k, std::span<const float>(in + k * d, d));
        r[k] = o.reward;
        t[k] = o.done;
        std::memcpy(s + k * kStateDim, o.next_state.data(), kStateDim * sizeof(float));
      }
    }
    return py::make_tuple(rewards, done, next);
  }

 private:
  std::unique_ptr<Simulator> sim_;
  std::unique_ptr<Simulator::Stepper> stepper_;
  int group_ = 0, d_ = 0;
};

}  // namespace
}  // namespace mtf::python

PYBIND11_MODULE(_core, m) {
  using namespace mtf::python;
  m.doc() = "mtfsim's compiled part; use the package mtfsim";
  m.def("run", &run, py::arg("scenario"), py::arg("is_path"), py::arg("out"), py::arg("threads"), py::arg("seed"),
        py::arg("policies"), py::arg("replace_any_file"));
  m.def("read_transitions", &read_transitions, py::arg("path"), py::arg("allow_partial"), py::arg("groups"));
  m.def("read_run", &read_run, py::arg("path"), py::arg("allow_partial"));
  m.def("action_names", [](const std::string& scenario, bool is_path) {
    return mtf::action_names(load(scenario, is_path, std::nullopt).fusion);
  });
  py::list features;
  for (const auto& f : mtf::kStateFeatures) features.append(py::make_tuple(f.name, f.lo, f.hi));
  m.attr("STATE_FEATURES") = features;
  m.attr("STATE_DIM") = mtf::kStateDim;
  m.attr("__version__") = mtf::code_version();

  py::class_<StepperCore>(m, "StepperCore")
      .def(py::init<const std::string&, bool, std::optional<std::uint64_t>, const std::string&,
                    std::optional<std::int64_t>, std::uint64_t>(),
           py::arg("scenario"), py::arg("is_path"), py::arg("seed"), py::arg("group"), py::arg("num_envs"),
           py::arg("user_seed"))
      .def_property_readonly("num_envs", &StepperCore::size)
      .def_property_readonly("action_dim", &StepperCore::action_dim)
      .def_property_readonly("group", &StepperCore::group_name)
      .def("observations", &StepperCore::observations)
      .def("requests", &StepperCore::requests)
      .def("step", &StepperCore::step, py::arg("actions"));

  // Errors of the libraries, as Python exceptions with their messages.
  py::register_exception<mtf::ScenarioError>(m, "ScenarioError", PyExc_ValueError);
  py::register_exception<mtf::RecordError>(m, "RecordError", PyExc_OSError);
}
