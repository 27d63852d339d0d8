// Trained agents named by files or run databases (agent_refs.h).
#include "experiments/agent_refs.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/state_features.h"
#include "sim/policies.h"

namespace mtf::experiments {

namespace fs = std::filesystem;

namespace {

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw agents::AgentFileError(path.string() + ": cannot open agent file (check the path)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void check_dims(const LoadedAgent& a, int action_dim) {
  if (a.agent->state_dim() != kStateDim)
    throw agents::AgentFileError(a.label + ": the agent reads states of " + std::to_string(a.agent->state_dim()) +
                                 " features, the simulator's have " + std::to_string(kStateDim));
  if (a.agent->action_dim() != action_dim)
    throw agents::AgentFileError(a.label + ": the agent acts in " + std::to_string(a.agent->action_dim()) +
                                 " dimensions, the scenario's fusion block has " + std::to_string(action_dim) +
                                 " (an agent runs only in a world with its action space)");
}

}  // namespace

LoadedAgent load_agent_ref(const std::string& file, const std::string& name, const std::string& base_dir,
                           int action_dim) {
  fs::path path = file;
  if (path.is_relative() && !base_dir.empty()) path = fs::path(base_dir) / path;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw agents::AgentFileError(path.string() + ": is a directory, not an agent file or a run database");
  if (!fs::exists(path, ec))
    throw agents::AgentFileError(path.string() + ": no such file (an agent file, or a run database that keeps "
                                 "the agent" + std::string(base_dir.empty() ? "" : "; read from the scenario file's folder") + ")");
  if (!fs::is_regular_file(path, ec))
    throw agents::AgentFileError(path.string() + ": not a regular file (an agent file or a run database is)");
  LoadedAgent out;
  if (name.empty()) {
    if (is_run_database(path))
      throw agents::AgentFileError(path.string() + ": a run database: name the agent it keeps (\"name\" in a "
                                   "scenario, RUN.sqlite:NAME on the command line; mtfsim report lists them)");
    out.label = path.string();
    out.bytes = read_bytes(path);
  } else {
    if (!is_run_database(path))
      throw agents::AgentFileError(path.string() + ": not a run database written by mtfsim, so it keeps no agent \"" +
                                   name + "\" (drop the name for an agent file)");
    out.label = path.string() + ":" + name;
    std::string names;
    for (AgentRow& row : read_agents(path)) {
      if (row.name == name) {
        out.bytes = std::move(row.data);
        break;
      }
      names += (names.empty() ? "" : ", ") + row.name;
    }
    if (out.bytes.empty())
      throw agents::AgentFileError(path.string() + ": keeps no agent \"" + name + "\" (it keeps " +
                                   (names.empty() ? std::string("none: a plain run, or an experiment whose agents all diverged")
                                                  : names) +
                                   ")");
  }
  out.agent = agents::load_agent_bytes(out.bytes, out.label);
  check_dims(out, action_dim);
  return out;
}

std::optional<std::pair<std::string, std::string>> split_agent_ref(const std::string& ref) {
  for (std::size_t colon = ref.find(':'); colon != std::string::npos; colon = ref.find(':', colon + 1)) {
    if (colon == 0 || colon + 1 >= ref.size()) continue;
    const fs::path db = ref.substr(0, colon);
    std::error_code ec;
    if (fs::is_regular_file(db, ec) && is_run_database(db)) return std::make_pair(db.string(), ref.substr(colon + 1));
  }
  return std::nullopt;
}

LoadedAgent load_agent_ref(const std::string& ref, int action_dim) {
  if (const auto split = split_agent_ref(ref)) return load_agent_ref(split->first, split->second, "", action_dim);
  return load_agent_ref(ref, "", "", action_dim);
}

GroupPolicies group_policies(const Scenario& s) {
  GroupPolicies out;
  const AgentLoader loader = [&out](const PolicySpec& spec, const Scenario& sc) -> PolicyPtr {
    LoadedAgent a = load_agent_ref(spec.path, spec.agent_name, spec.base_dir, sc.action_dim());
    AgentRow row;
    row.type = a.agent->name();
    row.steps = a.agent->steps_trained();
    row.source = a.label;
    row.hyperparameters = a.agent->hyperparameters().dump();
    row.bytes = static_cast<std::int64_t>(a.bytes.size());
    row.data = std::move(a.bytes);
    out.agents.push_back(std::move(row));
    return PolicyPtr(std::move(a.agent));
  };
  for (const GroupSpec& g : s.groups) {
    const std::size_t before = out.agents.size();
    try {
      out.policies.push_back(make_policy(g.policy, s, loader));
    } catch (const agents::AgentFileError& e) {
      throw ScenarioError("groups[\"" + g.name + "\"].policy: " + e.what());
    }
    if (out.agents.size() > before) out.agents.back().name = "group:" + g.name;
  }
  return out;
}

}  // namespace mtf::experiments
