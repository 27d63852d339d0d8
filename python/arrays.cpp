// Run databases as Python objects (see arrays.h).
#include "arrays.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <limits>

#include "results/export.h"
#include "results/recorder.h"

namespace mtf::python {

namespace {

/// A numpy array that owns `v`'s buffer (moved, not copied).
template <typename T>
py::array_t<T> owning_array(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  auto* owned = new std::vector<T>(std::move(v));
  const py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(std::move(shape), owned->data(), owner);
}

/// One field of every row as an array.
template <typename T, typename Rows, typename Get>
py::array_t<T> column(const Rows& rows, Get get) {
  py::array_t<T> a(static_cast<py::ssize_t>(rows.size()));
  T* p = a.mutable_data();
  for (const auto& r : rows) *p++ = get(r);
  return a;
}

/// NaN in the rows whose flag is false: NULL in the run database, as the export writes it.
void nan_where_missing(std::vector<float>& values, std::size_t d, const std::vector<TransitionColumns::Row>& rows,
                       bool TransitionColumns::Row::*flag) {
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (!(rows[i].*flag))
      std::fill_n(values.begin() + static_cast<std::ptrdiff_t>(i * d), d, std::numeric_limits<float>::quiet_NaN());
}

py::object optional_value(const std::optional<double>& v) { return v ? py::object(py::float_(*v)) : py::none(); }

}  // namespace

py::dict read_transitions(const std::string& path, bool allow_partial, const std::vector<std::string>& groups) {
  ExportOptions opts;
  opts.allow_partial = allow_partial;
  opts.groups = groups;
  ExportTable t;
  {
    py::gil_scoped_release release;
    t = read_export_table(path, opts);
  }
  TransitionColumns& c = t.columns;
  const auto n = static_cast<py::ssize_t>(c.size());
  const auto S = static_cast<std::size_t>(c.state_dim), d = static_cast<std::size_t>(c.action_dim);
  nan_where_missing(c.baseline, d, c.rows, &TransitionColumns::Row::has_baseline);
  std::vector<float> lower = c.dense_bounds(false, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> upper = c.dense_bounds(true, std::numeric_limits<float>::quiet_NaN());
  using Row = TransitionColumns::Row;
  py::dict out;
  // s' first: most of it is read from the state column, moved into numpy next.
  std::vector<float> next_states = c.dense_next_states();
  out["observations"] = owning_array(std::move(c.state), {n, static_cast<py::ssize_t>(S)});
  out["actions"] = owning_array(std::move(c.action), {n, static_cast<py::ssize_t>(d)});
  out["rewards"] = column<float>(c.rows, [](const Row& r) { return r.reward; });
  out["terminals"] = column<bool>(c.rows, [](const Row& r) { return r.done; });
  out["timeouts"] = column<bool>(t.ends.timeouts, [](std::uint8_t b) { return b != 0; });
  out["next_observations"] = owning_array(std::move(next_states), {n, static_cast<py::ssize_t>(S)});
  out["user"] = column<std::int64_t>(c.rows, [](const Row& r) { return r.user; });
  out["session"] = column<std::int32_t>(c.rows, [](const Row& r) { return r.session; });
  out["step"] = column<std::int32_t>(c.rows, [](const Row& r) { return r.step; });
  out["group"] = column<std::int32_t>(c.rows, [](const Row& r) { return r.group; });
  out["time"] = column<double>(c.rows, [](const Row& r) { return r.time; });
  out["baseline"] = owning_array(std::move(c.baseline), {n, static_cast<py::ssize_t>(d)});
  out["lower"] = owning_array(std::move(lower), {n, static_cast<py::ssize_t>(d)});
  out["upper"] = owning_array(std::move(upper), {n, static_cast<py::ssize_t>(d)});
  out["log_density"] = column<double>(c.rows, [](const Row& r) { return r.log_density; });  // NaN when unknown
  out["group_names"] = t.group_names;
  out["state_features"] = t.info.state_features;
  out["action_names"] = t.info.action_names;
  return out;
}

py::dict read_run(const std::string& path, bool allow_partial) {
  RunContents run;
  {
    py::gil_scoped_release release;
    run = mtf::read_run(path, /*with_transitions=*/false, /*with_rows=*/false, allow_partial);
  }
  const py::module_ json = py::module_::import("json");
  py::dict info;
  info["scenario_name"] = run.info.scenario_name;
  info["scenario"] = json.attr("loads")(run.info.scenario_json);
  info["seed"] = run.info.seed;
  info["code_version"] = run.info.code_version;
  info["state_dim"] = run.info.state_dim;
  info["action_dim"] = run.info.action_dim;
  info["state_features"] = run.info.state_features;
  info["action_names"] = run.info.action_names;
  info["threads"] = run.info.threads;

  py::list groups;
  for (const GroupRow& g : run.groups) {
    py::dict row;
    row["group"] = g.group;
    row["name"] = g.name;
    row["share"] = g.share;
    row["policy"] = g.policy;
    row["policy_spec"] = json.attr("loads")(g.policy_json);
    row["users"] = g.users;
    groups.append(row);
  }
  py::dict summary;  // {group name: {metric: value}}, in table order
  for (const SummaryRow& s : run.summary) {
    const py::str name(s.name);
    if (!summary.contains(name)) summary[name] = py::dict();
    summary[name][py::str(s.metric)] = s.value;
  }
  py::list metrics;
  for (const MetricRow& m : run.metrics) {
    py::dict row;
    row["section"] = m.section;
    row["subject"] = m.subject;
    row["metric"] = m.metric;
    row["value"] = m.value;
    row["ci_low"] = optional_value(m.ci_low);
    row["ci_high"] = optional_value(m.ci_high);
    row["p_value"] = optional_value(m.p_value);
    row["rep"] = m.rep ? py::object(py::int_(*m.rep)) : py::none();
    row["n"] = m.n ? py::object(py::int_(*m.n)) : py::none();
    row["details"] = m.details.empty() ? py::object(py::none()) : json.attr("loads")(m.details);
    metrics.append(row);
  }
  py::list agents;
  for (const AgentRow& a : run.agents) {
    py::dict row;
    row["name"] = a.name;
    row["type"] = a.type;
    row["steps"] = a.steps;
    row["source"] = a.source;
    row["hyperparameters"] = json.attr("loads")(a.hyperparameters);
    row["bytes"] = a.bytes;
    agents.append(row);
  }
  py::dict out;
  out["schema_version"] = run.schema_version;
  out["info"] = info;
  out["started_at"] = run.started_at;
  out["finished_at"] = run.finished_at.empty() ? py::object(py::none()) : py::object(py::str(run.finished_at));
  out["wall_seconds"] = run.wall_seconds ? py::object(py::float_(*run.wall_seconds)) : py::none();
  out["groups"] = groups;
  out["summary"] = summary;
  out["metrics"] = metrics;
  out["agents"] = agents;
  return out;
}

}  // namespace mtf::python
