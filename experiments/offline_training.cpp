// Training one agent on a run database (offline_training.h).
#include "experiments/offline_training.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/column_file.h"
#include "core/state_features.h"
#include "experiments/agent_refs.h"
#include "results/recorder.h"

namespace mtf::experiments {

namespace {

std::string number(double v) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// Loss names in the order the curve first shows them.
std::vector<std::string> loss_names(const std::vector<agents::CurvePoint>& curve) {
  std::vector<std::string> names;
  for (const auto& p : curve)
    for (const auto& [name, value] : p.losses)
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  return names;
}

double loss_of(const agents::CurvePoint& p, const std::string& name) {
  for (const auto& [n, v] : p.losses)
    if (n == name) return v;
  return std::nan("");
}

}  // namespace

OfflineTrainingResult train_offline(const OfflineTrainingSpec& spec) {
  if (spec.steps < 1) throw std::invalid_argument("train: steps must be at least 1");
  if (spec.type.empty() == spec.from.empty())
    throw std::invalid_argument("train: give either an agent type to create or an agent to train further");
  const int shards = spec.cluster ? spec.cluster->size() : 1, shard = spec.cluster ? spec.cluster->rank() : 0;
  // The transitions: in memory, or written in chunks to column files and mapped.
  std::shared_ptr<const TransitionColumns> in_memory;
  std::shared_ptr<const MappedColumns> mapped;
  struct RemoveAfter {  // the scratch column files go when training ends, however it ends
    std::filesystem::path dir;
    bool created = false;
    ~RemoveAfter() {
      if (!dir.empty()) remove_column_files(dir, created);
    }
  } scratch;
  const RunContents info = read_run(spec.run, /*with_transitions=*/false, /*with_rows=*/false);
  std::set<int> wanted;
  for (const std::string& g : spec.groups) {
    const auto it = std::find_if(info.groups.begin(), info.groups.end(), [&](const GroupRow& r) { return r.name == g; });
    if (it == info.groups.end()) {
      std::string names;
      for (const GroupRow& r : info.groups) names += (names.empty() ? "" : ", ") + r.name;
      throw std::invalid_argument("train: --groups: expected names of the run's groups (" + names + "), got \"" + g +
                                  "\"");
    }
    wanted.insert(it->group);
  }
  if (spec.out_of_core.empty()) {
    in_memory = std::make_shared<const TransitionColumns>(
        read_transition_columns(spec.run, /*allow_partial=*/false, shards, shard));
  } else {
    if (spec.chunk_rows < 1) throw std::invalid_argument("train: chunk rows must be at least 1");
    std::optional<ColumnFileWriter> writer;
    read_transition_chunks(spec.run, /*allow_partial=*/false, shards, shard, spec.chunk_rows,
                           [&](TransitionColumns& chunk) {
                             if (!writer) {
                               writer.emplace(spec.out_of_core, chunk.state_dim, chunk.action_dim);
                               scratch.dir = spec.out_of_core;
                               scratch.created = writer->created_dir();
                             }
                             // Only the groups trained on: sampling then reads
                             // their pages alone (groups interleave row by row).
                             if (wanted.empty()) return writer->append(chunk);
                             TransitionColumns kept;
                             kept.state_dim = chunk.state_dim;
                             kept.action_dim = chunk.action_dim;
                             const TransitionColumnsView all = chunk.view();
                             for (std::size_t i = 0; i < all.size(); ++i)
                               if (wanted.count(all.rows[i].group)) kept.push_row(all, i);
                             writer->append(kept);
                           });
    writer->finish();
    mapped = std::make_shared<const MappedColumns>(spec.out_of_core);
  }
  const TransitionColumnsView c = mapped ? mapped->view() : in_memory->view();
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (wanted.empty() || wanted.count(c.rows[i].group)) rows.push_back(i);
  if (rows.empty())
    throw std::invalid_argument("train: " + spec.run.string() + " holds no transitions" +
                                (wanted.empty() ? std::string(" (a run with \"record\": {\"transitions\": false}?)")
                                                : std::string(" in the groups named by --groups")) +
                                (shards > 1 ? " for MPI rank " + std::to_string(shard) + " (the users u with u mod " +
                                                  std::to_string(shards) + " == " + std::to_string(shard) +
                                                  "): use fewer ranks"
                                            : std::string()));
  agents::Dataset data = mapped ? agents::Dataset(mapped, rows, {}, spec.formulation)
                                : agents::Dataset(in_memory, rows, {}, spec.formulation);
  if (spec.discount_seconds > 0) data.discount_by_elapsed_time(spec.discount_seconds);

  OfflineTrainingResult out;
  // Every rank's shard together (counts far below 2^53: exact in a double).
  out.transitions = static_cast<std::int64_t>(
      sum_over_ranks(shards > 1 ? spec.cluster : nullptr, {static_cast<double>(rows.size())})[0]);
  if (spec.from.empty()) {
    out.agent = agents::make_agent(spec.type, spec.hyperparameters, kStateDim, data.action_dim(), spec.seed);
  } else {
    out.agent = load_agent_ref(spec.from, data.action_dim());
  }
  out.agent->set_data_parallel(spec.cluster);
  const agents::CurveProbe probe(data, 1024, agents::agent_gamma(*out.agent));
  agents::Agent& agent = *out.agent;
  const auto t0 = std::chrono::steady_clock::now();
  agent.train(data, spec.steps, [&](const agents::TrainProgress& p) {
    if (agents::is_curve_step(p.step, spec.steps, spec.curve_points)) {
      agents::CurvePoint point = probe.measure(agent, p.losses);
      point.step = agent.steps_trained();
      out.curve.push_back(std::move(point));
    }
    if (spec.progress) spec.progress(p);
  });
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::string format_curve(const std::vector<agents::CurvePoint>& curve, int rows) {
  std::ostringstream o;
  const std::vector<std::string> losses = loss_names(curve);
  o << "| step |";
  for (const std::string& l : losses) o << " loss/" << l << " |";
  o << " mean_q | outside_bounds | baseline_distance | q_data | mc_return |\n|---|";
  for (std::size_t i = 0; i < losses.size() + 5; ++i) o << "---|";
  o << "\n";
  for (std::size_t i : agents::log_spaced_indices(curve.size(), rows)) {
    const agents::CurvePoint& p = curve[i];
    o << "| " << p.step << " |";
    for (const std::string& l : losses) o << " " << number(loss_of(p, l)) << " |";
    o << " " << number(p.mean_q) << " | " << number(p.outside_bounds) << " | " << number(p.baseline_distance)
      << " | " << number(p.q_data) << " | " << number(p.mc_return) << " |\n";
  }
  return o.str();
}

std::string curve_csv(const std::vector<agents::CurvePoint>& curve) {
  std::ostringstream o;
  const std::vector<std::string> losses = loss_names(curve);
  o << "step";
  for (const std::string& l : losses) o << ",loss/" << l;
  o << ",mean_q,outside_bounds,baseline_distance,q_data,mc_return\n";
  const auto csv = [](double v) {
    if (!std::isfinite(v)) return std::string();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return std::string(buf);
  };
  for (const agents::CurvePoint& p : curve) {
    o << p.step;
    for (const std::string& l : losses) o << "," << csv(loss_of(p, l));
    o << "," << csv(p.mean_q) << "," << csv(p.outside_bounds) << "," << csv(p.baseline_distance) << ","
      << csv(p.q_data) << "," << csv(p.mc_return) << "\n";
  }
  return o.str();
}

}  // namespace mtf::experiments
