// The interface every learning agent implements: train on an offline dataset,
// act as a Policy, save, load and clone. Agents see states, actions and rewards only;
// they never reach into the simulator.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "agents/dataset.h"
#include "core/cluster.h"
#include "core/policy.h"

namespace mtf::agents {

/// Named scalar losses of one training step ("critic", "actor", ...).
using Losses = std::vector<std::pair<std::string, double>>;

struct TrainProgress {
  std::int64_t step = 0;         ///< steps done in this train() call, from 1
  std::int64_t total_steps = 0;  ///< steps of this train() call
  const Losses* losses = nullptr;
};
using ProgressCallback = std::function<void(const TrainProgress&)>;

/// Thrown when a loss becomes NaN or infinite: names the agent, step and loss.
class TrainingDiverged : public std::runtime_error {
 public:
  TrainingDiverged(const std::string& agent, std::int64_t step, const std::string& loss, double value);
  std::int64_t step() const { return step_; }
  const std::string& loss() const { return loss_; }

 private:
  std::int64_t step_;
  std::string loss_;
};

/// Throws TrainingDiverged when one of `losses` (those of `agent`'s step
/// `step`) is not finite. With more than one rank (data-parallel: each rank's
/// losses are its own minibatch's) every rank throws the same error, naming
/// the first rank in rank order whose loss is not finite, so that the ranks
/// stop together instead of one waiting for another in the next exchange.
/// Collective when `ranks` has more than one rank.
void throw_if_diverged(const std::string& agent, std::int64_t step, const Losses& losses, const Cluster* ranks);

/// Thrown for unreadable agent files (wrong magic, version, truncated, corrupt).
class AgentFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Agent : public Policy {
 public:
  /// Runs `steps` gradient steps on minibatches drawn from `data` with the
  /// agent's own seeded stream. The first call fits the state normalisation on
  /// `data`; later calls keep it. Calls `progress` after every step. Throws
  /// TrainingDiverged on a non-finite loss.
  virtual void train(const Dataset& data, std::int64_t steps, const ProgressCallback& progress = {}) = 0;
  /// Data-parallel training over these ranks (core/cluster.h), for the next
  /// train() calls: every rank calls train() with its own shard of the data
  /// and the same steps; the first call fits the state normalisation on the
  /// union of the shards (the ranks' moments merged in rank order); each step
  /// every rank samples batch_size / N rows of its shard from its own stream
  /// (rank 0's is the agent's, rank r's derived from the seed, r and the steps
  /// trained before the first data-parallel call), and every
  /// optimiser averages the ranks' gradients in rank order before its update,
  /// so every rank holds the same parameters after every step. Deterministic
  /// for a given rank count; not the bits of one process (other minibatches).
  /// batch_size must be a multiple of N. Null (or one rank): train alone.
  virtual void set_data_parallel(const Cluster* ranks) = 0;
  using Policy::act_batch;
  /// Actions (A x B) for raw states (S x B). Stochastic parts draw from rng.
  virtual void act_batch(const ConstRef& states, Matrix& actions, Rng& rng) const = 0;
  /// The critics' values Q_i(s, a) (one row per critic) for raw states, in the
  /// data's reward units (whatever reward_scale() the agent trained with);
  /// agents without a critic throw std::logic_error.
  virtual Matrix q_values(const ConstRef& states, const ConstRef& actions) const = 0;
  /// The constant the agent divides every reward by before learning
  /// (hyperparameter "reward_scale": "none" gives 1; "mean_abs" the mean
  /// |reward| of the data of its first training), saved with the agent. With it
  /// the penalty weights (eta, beta, CQL's alpha, IQL's temperature) mean the
  /// same on worlds whose rewards differ only in scale.
  virtual double reward_scale() const = 0;
  /// The hyperparameters in use (defaults filled in), as accepted by make_agent.
  virtual nlohmann::json hyperparameters() const = 0;
  virtual int state_dim() const = 0;
  /// Gradient steps done so far.
  virtual std::int64_t steps_trained() const = 0;
  /// Writes the trained agent and its training state (targets, optimiser
  /// moments, counters, random streams), so that load_agent and train(m) after
  /// train(n) give the bits of train(n + m). Format: agents/agent_base.cpp.
  /// The file is written atomically (a temporary file beside it, renamed).
  virtual void save(const std::filesystem::path& path) const = 0;
  /// The bytes save() writes (for agents kept inside a run database).
  virtual std::string to_bytes() const = 0;
  /// An independent copy with the training state (the parameters, targets,
  /// optimiser moments, counters, normalisation and random streams): it acts as
  /// this agent does, train(m) on it gives the bits of train(m) on this one, and
  /// training either later leaves the other unchanged (a frozen policy to deploy
  /// while the original trains on).
  virtual std::unique_ptr<Agent> clone() const = 0;
};

/// Agent names accepted by make_agent.
std::vector<std::string> agent_names();

/// Creates an untrained agent. `hyperparameters` overrides the defaults of the
/// agent's paper; an unknown key or a value of the wrong type or range throws
/// std::invalid_argument naming the key and what it expects.
std::unique_ptr<Agent> make_agent(const std::string& name, const nlohmann::json& hyperparameters,
                                  int state_dim, int action_dim, std::uint64_t seed);

/// Loads an agent saved with Agent::save (format versions 1 and 2; a version 1
/// file holds weights only, so its training resumes with fresh targets,
/// optimisers and streams). Throws AgentFileError.
std::unique_ptr<Agent> load_agent(const std::filesystem::path& path);
/// load_agent on bytes save() wrote (to_bytes); `origin` names where they came
/// from in error messages ("run.sqlite: agent bcq").
std::unique_ptr<Agent> load_agent_bytes(const std::string& bytes, const std::string& origin);

}  // namespace mtf::agents
