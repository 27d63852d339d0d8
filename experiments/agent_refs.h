// Trained policies wherever a policy can be named: an agent file (`x.mtfa`,
// written by `mtfsim train` or Agent::save), a foreign MLP policy file (JSON,
// docs/policy-format.md: a network trained in PyTorch or JAX), or an agent a
// run database keeps (`RUN.sqlite:NAME`; table agents). Used by `mtfsim
// evaluate --policy`, `mtfsim act`, `mtfsim train --from` (agents only), and
// scenario groups with `"policy": {"type": "agent", "path": ..., "name": ...}`
// (group_policies).
#pragma once

#include <cstdint>
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

/// A policy read from a file or a run database, and where it came from.
struct LoadedPolicy {
  PolicyPtr policy;
  std::string bytes;  ///< the file's bytes (kept with a run that deploys it)
  std::string label;  ///< "file.mtfa" or "RUN.sqlite:NAME", for messages and tables
  std::string type;   ///< the agent type, or "mlp" for a foreign MLP policy
  std::int64_t steps = 0;        ///< gradient steps trained (0 for an MLP policy: unknown)
  std::string hyperparameters;   ///< JSON; "{}" for an MLP policy
};

/// Loads the policy in `file` (an agent file or an MLP policy file), or the
/// one kept as `name` in the run database `file` when `name` is not empty. A
/// relative `file` is read from `base_dir` (empty: the working directory).
/// Checks that it reads the simulator's states (kStateDim) and acts in
/// `action_dim` dimensions (any when action_dim < 0). Errors (AgentFileError, or std::invalid_argument
/// for a malformed MLP file) name the file and the fix.
LoadedPolicy load_policy_ref(const std::string& file, const std::string& name, const std::string& base_dir,
                             int action_dim);

/// A command-line reference `RUN.sqlite:NAME` split into the run database and
/// the agent's name: at the first ':' whose left part is a run database (names
/// may hold ':', as "group:NAME" does); nullopt for anything else.
std::optional<std::pair<std::string, std::string>> split_agent_ref(const std::string& ref);

/// load_policy_ref for a command-line reference: a file, or `RUN.sqlite:NAME`.
LoadedPolicy load_policy_ref(const std::string& ref, int action_dim);

/// A trainable agent (an agent file or a kept agent, not an MLP policy) for a
/// command-line reference, e.g. `mtfsim train --from`.
std::unique_ptr<agents::Agent> load_agent_ref(const std::string& ref, int action_dim);

/// The policies of a scenario's groups, in order (what a Simulator of the
/// scenario runs), and the trained policies among them as rows of the run
/// database's table agents (name "group:<group name>"), so that a run keeps
/// what it ran.
struct GroupPolicies {
  std::vector<PolicyPtr> policies;
  std::vector<AgentRow> agents;
};
/// Agent groups are loaded with load_policy_ref; the others are sim's make_policy.
GroupPolicies group_policies(const Scenario& s);

}  // namespace mtf::experiments
