// Trained agents wherever a policy can be named: an agent file (`x.mtfa`,
// written by `mtfsim train` or Agent::save), or an agent an experiment kept in
// its run database (`RUN.sqlite:NAME`; table agents). Used by `mtfsim
// evaluate --policy`, `mtfsim train --from`, and scenario groups with
// `"policy": {"type": "agent", "path": ..., "name": ...}` (group_policies).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agents/agent.h"
#include "core/policy.h"
#include "results/recorder.h"
#include "sim/scenario.h"

namespace mtf::experiments {

/// A loaded agent and where it came from.
struct LoadedAgent {
  std::unique_ptr<agents::Agent> agent;
  std::string bytes;  ///< its agent file's bytes (kept with a run that deploys it)
  std::string label;  ///< "file.mtfa" or "RUN.sqlite:NAME", for messages and tables
};

/// Loads the agent in `file` (an agent file), or the agent `name` kept in the
/// run database `file` when `name` is not empty. A relative `file` is read
/// from `base_dir` (empty: the working directory). Checks that it acts on the
/// simulator's state (kStateDim) in `action_dim` dimensions. Errors name the
/// file and the fix (the agents a run database keeps, when `name` is not one).
LoadedAgent load_agent_ref(const std::string& file, const std::string& name, const std::string& base_dir,
                           int action_dim);

/// A command-line reference `RUN.sqlite:NAME` split into the run database and
/// the agent's name: at the first ':' whose left part is a run database (names
/// may hold ':', as "group:NAME" does); nullopt for anything else.
std::optional<std::pair<std::string, std::string>> split_agent_ref(const std::string& ref);

/// The same for a command-line reference: `x.mtfa` (any path that is not a run
/// database) or `RUN.sqlite:NAME` (split_agent_ref).
LoadedAgent load_agent_ref(const std::string& ref, int action_dim);

/// The policies of a scenario's groups, in order (what a Simulator of the
/// scenario runs), and the agents among them as rows of the run database's
/// table agents (name "group:<group name>"), so that a run keeps what it ran.
struct GroupPolicies {
  std::vector<PolicyPtr> policies;
  std::vector<AgentRow> agents;
};
/// Agent groups are loaded with load_agent_ref; the others are sim's make_policy.
GroupPolicies group_policies(const Scenario& s);

}  // namespace mtf::experiments
