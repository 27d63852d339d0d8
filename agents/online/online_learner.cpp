// make_online_learner: the one place that knows every online learner by name.
#include "agents/online/online_learner.h"

#include <stdexcept>

#include "agents/online/bo.h"
#include "agents/online/es.h"
#include "agents/online/grid.h"

namespace mtf::agents {

std::vector<std::string> online_learner_names() {
  return {EvolutionStrategy::kName, BayesianOptimisation::kName, GridSearch::kName};
}

std::unique_ptr<OnlineLearner> make_online_learner(const std::string& type,
                                                   const nlohmann::json& hyperparameters,
                                                   int state_dim, int action_dim,
                                                   PolicyPtr baseline, std::uint64_t seed) {
  if (state_dim < 1)
    throw std::invalid_argument("online learner \"" + type +
                                "\": state_dim: expected at least 1, got " +
                                std::to_string(state_dim));
  if (action_dim < 1 || action_dim > 64)
    throw std::invalid_argument("online learner \"" + type +
                                "\": action_dim: expected an integer in [1, 64], got " +
                                std::to_string(action_dim));
  if (type == EvolutionStrategy::kName)
    return std::make_unique<EvolutionStrategy>(hyperparameters, state_dim, action_dim,
                                               std::move(baseline), seed);
  if (type == BayesianOptimisation::kName)
    return std::make_unique<BayesianOptimisation>(hyperparameters, state_dim, action_dim,
                                                  std::move(baseline), seed);
  if (type == GridSearch::kName)
    return std::make_unique<GridSearch>(hyperparameters, action_dim, std::move(baseline), seed);
  std::string known;
  for (const auto& n : online_learner_names()) known += (known.empty() ? "\"" : ", \"") + n + "\"";
  throw std::invalid_argument("online learner \"" + type + "\": unknown type; known: " + known);
}

}  // namespace mtf::agents
