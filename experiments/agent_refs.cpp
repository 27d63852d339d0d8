// Trained policies named by files or run databases (agent_refs.h).
#include "experiments/agent_refs.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "agents/mlp_policy.h"
#include "core/state_features.h"
#include "sim/policies.h"

namespace mtf::experiments {

namespace fs = std::filesystem;

namespace {

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw agents::AgentFileError(path.string() + ": cannot open the file (check the path)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The bytes a reference names and its label.
std::pair<std::string, std::string> read_ref(const std::string& file, const std::string& name,
                                             const std::string& base_dir) {
  fs::path path = file;
  if (path.is_relative() && !base_dir.empty()) path = fs::path(base_dir) / path;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw agents::AgentFileError(path.string() + ": is a directory, not an agent file, a policy file or a run database");
  if (!fs::exists(path, ec))
    throw agents::AgentFileError(path.string() + ": no such file (an agent file, an MLP policy file, or a run database "
                                 "that keeps the agent" +
                                 std::string(base_dir.empty() ? "" : "; read from the scenario file's folder") + ")");
  if (!fs::is_regular_file(path, ec))
    throw agents::AgentFileError(path.string() + ": not a regular file (an agent file or a run database is)");
  if (name.empty()) {
    if (is_run_database(path))
      throw agents::AgentFileError(path.string() + ": a run database: name the agent it keeps (\"name\" in a "
                                   "scenario, RUN.sqlite:NAME on the command line; mtfsim report lists them)");
    return {read_bytes(path), path.string()};
  }
  if (!is_run_database(path))
    throw agents::AgentFileError(path.string() + ": not a run database written by mtfsim, so it keeps no agent \"" +
                                 name + "\" (drop the name for an agent or policy file)");
  std::string names;
  for (AgentRow& row : read_agents(path)) {
    if (row.name == name) return {std::move(row.data), path.string() + ":" + name};
    names += (names.empty() ? "" : ", ") + row.name;
  }
  throw agents::AgentFileError(path.string() + ": keeps no agent \"" + name + "\" (it keeps " +
                               (names.empty() ? std::string("none: a plain run, or an experiment whose agents all diverged")
                                              : names) +
                               ")");
}

void check_dims(const std::string& label, int state_dim, int got_action_dim, int action_dim) {
  if (state_dim != kStateDim)
    throw agents::AgentFileError(label + ": the policy reads states of " + std::to_string(state_dim) +
                                 " features, the simulator's have " + std::to_string(kStateDim));
  if (action_dim >= 0 && got_action_dim != action_dim)
    throw agents::AgentFileError(label + ": the policy acts in " + std::to_string(got_action_dim) +
                                 " dimensions, the scenario's fusion block has " + std::to_string(action_dim) +
                                 " (a policy runs only in a world with its action space)");
}

}  // namespace

LoadedPolicy load_policy_ref(const std::string& file, const std::string& name, const std::string& base_dir,
                             int action_dim) {
  LoadedPolicy out;
  std::tie(out.bytes, out.label) = read_ref(file, name, base_dir);
  if (agents::looks_like_json(out.bytes)) {
    std::shared_ptr<agents::MlpPolicy> mlp = agents::parse_mlp_policy(out.bytes, out.label, kStateDim);
    check_dims(out.label, mlp->state_dim(), mlp->action_dim(), action_dim);
    out.type = "mlp";
    out.hyperparameters = "{}";
    out.policy = std::move(mlp);
    return out;
  }
  std::unique_ptr<agents::Agent> agent = agents::load_agent_bytes(out.bytes, out.label);
  check_dims(out.label, agent->state_dim(), agent->action_dim(), action_dim);
  out.type = agent->name();
  out.steps = agent->steps_trained();
  out.hyperparameters = agent->hyperparameters().dump();
  out.policy = PolicyPtr(std::move(agent));
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

LoadedPolicy load_policy_ref(const std::string& ref, int action_dim) {
  if (const auto split = split_agent_ref(ref)) return load_policy_ref(split->first, split->second, "", action_dim);
  return load_policy_ref(ref, "", "", action_dim);
}

std::unique_ptr<agents::Agent> load_agent_ref(const std::string& ref, int action_dim) {
  const auto split = split_agent_ref(ref);
  const auto [bytes, label] = split ? read_ref(split->first, split->second, "") : read_ref(ref, "", "");
  if (agents::looks_like_json(bytes))
    throw agents::AgentFileError(label + ": an MLP policy file (docs/policy-format.md): it can be evaluated and "
                                 "deployed, but it holds no training state to train further");
  std::unique_ptr<agents::Agent> agent = agents::load_agent_bytes(bytes, label);
  check_dims(label, agent->state_dim(), agent->action_dim(), action_dim);
  return agent;
}

GroupPolicies group_policies(const Scenario& s) {
  GroupPolicies out;
  const AgentLoader loader = [&out](const PolicySpec& spec, const Scenario& sc) -> PolicyPtr {
    LoadedPolicy p = load_policy_ref(spec.path, spec.agent_name, spec.base_dir, sc.action_dim());
    AgentRow row;
    row.type = p.type;
    row.steps = p.steps;
    row.source = p.label;
    row.hyperparameters = p.hyperparameters;
    row.bytes = static_cast<std::int64_t>(p.bytes.size());
    row.data = std::move(p.bytes);
    out.agents.push_back(std::move(row));
    return p.policy;
  };
  for (const GroupSpec& g : s.groups) {
    const std::size_t before = out.agents.size();
    try {
      out.policies.push_back(make_policy(g.policy, s, loader));
    } catch (const agents::AgentFileError& e) {
      throw ScenarioError("groups[\"" + g.name + "\"].policy: " + e.what());
    } catch (const std::invalid_argument& e) {
      throw ScenarioError("groups[\"" + g.name + "\"].policy: " + e.what());
    }
    if (out.agents.size() > before) out.agents.back().name = "group:" + g.name;
  }
  return out;
}

}  // namespace mtf::experiments
