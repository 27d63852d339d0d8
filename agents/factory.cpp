// make_agent: the one place that knows every agent by name.
#include <stdexcept>

#include "agents/agent.h"
#include "agents/bc.h"
#include "agents/bcq.h"
#include "agents/cql_sac.h"
#include "agents/ddpg.h"
#include "agents/integratedrl_mtf.h"
#include "agents/iql.h"
#include "agents/td3.h"
#include "agents/uwac_td3.h"

namespace mtf::agents {

std::vector<std::string> agent_names() {
  return {IntegratedRlMtf::kName, Bcq::kName, CqlSac::kName, Iql::kName,
          Td3::kName,             Ddpg::kName, UwacTd3::kName, BehaviourCloning::kName};
}

std::unique_ptr<Agent> make_agent(const std::string& name, const nlohmann::json& hp, int state_dim, int action_dim,
                                  std::uint64_t seed) {
  if (name == IntegratedRlMtf::kName) return std::make_unique<IntegratedRlMtf>(hp, state_dim, action_dim, seed);
  if (name == Bcq::kName) return std::make_unique<Bcq>(hp, state_dim, action_dim, seed);
  if (name == Td3::kName) return std::make_unique<Td3>(hp, state_dim, action_dim, seed);
  if (name == Ddpg::kName) return std::make_unique<Ddpg>(hp, state_dim, action_dim, seed);
  if (name == CqlSac::kName) return std::make_unique<CqlSac>(hp, state_dim, action_dim, seed);
  if (name == Iql::kName) return std::make_unique<Iql>(hp, state_dim, action_dim, seed);
  if (name == UwacTd3::kName) return std::make_unique<UwacTd3>(hp, state_dim, action_dim, seed);
  if (name == BehaviourCloning::kName) return std::make_unique<BehaviourCloning>(hp, state_dim, action_dim, seed);
  std::string known;
  for (const auto& n : agent_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("agent \"" + name + "\": unknown agent; known: " + known);
}

}  // namespace mtf::agents
