// What all agents share: hyperparameters, the three seeded streams, the state
// normalisation, the training loop with NaN detection, acting as a Policy, and
// the agent file, cloning. An agent implements update() (one gradient step on a
// normalised minibatch) and act_normalised().
#pragma once

#include <array>
#include <string>
#include <vector>

#include "agents/agent.h"
#include "agents/hyperparameters.h"
#include "agents/nn/adam.h"
#include "agents/nn/heads.h"
#include "agents/nn/mlp.h"

namespace mtf::agents {

/// What resumed training needs beyond the policy's parameters: target networks
/// (each with the online network it tracks), optimisers, counters (such as the
/// updates that time delayed steps) and reported values. Pointers into the agent.
struct TrainingState {
  struct Target {
    std::string name;
    nn::Mlp* target;
    const nn::Mlp* online;
  };
  std::vector<Target> targets;
  std::vector<std::pair<std::string, nn::Adam*>> optimisers;
  std::vector<std::pair<std::string, std::int64_t*>> counters;
  std::vector<std::pair<std::string, double*>> reals;
};

/// The training section of an agent file (format version 2), as read.
struct SavedTraining {
  std::array<std::array<std::uint64_t, 4>, 3> rng;  ///< init, batch and noise streams
  std::vector<std::pair<std::string, std::int64_t>> counters;
  std::vector<std::pair<std::string, double>> reals;
  std::vector<std::pair<std::string, Matrix>> tensors;
};

class AgentBase : public Agent {
 public:
  std::string name() const override { return name_; }
  int action_dim() const override { return A_; }
  int state_dim() const override { return S_; }
  std::int64_t steps_trained() const override { return steps_; }
  nlohmann::json hyperparameters() const override { return hp_.resolved(); }
  double reward_scale() const override { return reward_scale_; }

  void train(const Dataset& data, std::int64_t steps, const ProgressCallback& progress = {}) override;
  void set_data_parallel(const Cluster* ranks) override { ranks_ = ranks && ranks->size() > 1 ? ranks : nullptr; }
  void act(std::span<const float> state, std::span<float> action, Rng& rng, ActionInfo* info) const override;
  /// Policy::act_batch. Rows with streams of their own (the simulator's
  /// requests): each row's action, draws and ActionInfo are those act() gives; a
  /// deterministic agent normalises the batch and runs its actor once over it
  /// (the acting path computes every column on its own, Mlp::infer_columns, so
  /// results do not depend on how requests are batched), a stochastic one acts
  /// row by row. Rows that all share one stream (offline evaluation): one batched
  /// pass drawing from it, as act_batch(states, actions, rng) does; for agents
  /// that sample (BCQ) its draws differ from act() per row. Throws
  /// std::invalid_argument on sizes that do not fit the agent.
  void act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                 std::span<ActionInfo* const> infos) const override;
  /// Acts on the columns of `states` in chunks of kActChunk (bounded memory for
  /// a whole dataset); the result does not depend on the chunk size.
  void act_batch(const ConstRef& states, Matrix& actions, Rng& rng) const override;
  static constexpr Eigen::Index kActChunk = 2048;
  Matrix q_values(const ConstRef& states, const ConstRef& actions) const override;
  void save(const std::filesystem::path& path) const override;
  std::string to_bytes() const override;
  /// Every agent clones the same way: a fresh agent of the same name,
  /// hyperparameters, dimensions and seed, given a copy of all that save()
  /// writes (in memory, so the copy is exact by the same argument).
  std::unique_ptr<Agent> clone() const override;

  /// Restores what save() wrote after the header (used by load_agent). With
  /// `training` (format version 2) training resumes exactly where it stopped:
  /// train(n); save; load; train(m) gives the bits of train(n + m). Without it
  /// (version 1 files) the targets restart as copies of the online networks and
  /// the optimisers and streams restart fresh. Throws AgentFileError naming
  /// `path` when the file does not fit the agent.
  void restore(const StateNormaliser& norm, bool fitted, std::int64_t steps,
               const std::vector<std::pair<std::string, Matrix>>& tensors, const SavedTraining* training,
               const std::string& path);
  const StateNormaliser& normaliser() const { return norm_; }
  /// All parameters that define the trained agent, in a fixed order with unique names.
  std::vector<std::pair<std::string, const nn::Param*>> named_params() const;

 protected:
  AgentBase(std::string name, Hyperparameters hp, int state_dim, int action_dim, std::uint64_t seed);

  /// One gradient step on a minibatch with normalised states; returns its losses.
  virtual Losses update(const Batch& batch) = 0;
  /// Actions for normalised states. Must be thread-safe (no shared scratch).
  /// A deterministic agent's column j must depend only on column j (use the
  /// heads' acting functions, built on Mlp::infer_columns): act_batch relies on it.
  virtual void act_normalised(const ConstRef& states, Matrix& actions, Rng& rng) const = 0;
  /// Critic values for normalised states; default: no critic.
  virtual Matrix q_normalised(const ConstRef& states, const ConstRef& actions) const;
  /// True when act() is deterministic given the state (log density +infinity).
  virtual bool deterministic() const { return true; }
  /// The networks that define the policy and its critics, by name.
  virtual std::vector<std::pair<std::string, nn::Mlp*>> networks() = 0;
  /// Extra parameters outside networks (e.g. a learned log std).
  virtual std::vector<nn::Param*> extra_params() { return {}; }
  /// Everything else training changes (saved in the file's training section).
  virtual TrainingState training_state() = 0;

  /// Most weights (and biases) of one network, members included: 2^24, 64 MiB of floats.
  static constexpr long long kMaxNetworkWeights = 1LL << 24;
  /// An MlpSpec from the shared hyperparameters (hidden, activation, layer_norm, init).
  /// Throws std::invalid_argument when the network would hold more than
  /// kMaxNetworkWeights weights.
  nn::MlpSpec spec(int input, int output, int members = 1) const;

  std::string name_;
  Hyperparameters hp_;
  int S_, A_;
  std::uint64_t seed_;
  Rng init_rng_, batch_rng_, noise_rng_;
  StateNormaliser norm_;
  bool fitted_ = false;
  std::int64_t steps_ = 0;
  int batch_size_;
  bool scale_rewards_ = false;  ///< hyperparameter reward_scale is "mean_abs"
  double reward_scale_ = 1.0;   ///< see Agent::reward_scale()

 private:
  /// What act() reports about its action: no baseline, no bounds, the density.
  void fill_info(ActionInfo* info) const;
  /// training_state()'s reals and, when rewards are scaled, the scale (last):
  /// what the file's training section holds.
  std::vector<std::pair<std::string, double*>> saved_reals(const TrainingState& ts);

  Batch batch_;
  const Cluster* ranks_ = nullptr;  ///< data-parallel training (set_data_parallel)
};

/// Defaults every agent accepts: network shape, batch size and reward scaling.
nlohmann::json common_defaults();

/// Stacks states and actions as a critic input [s; a].
inline void critic_input(const ConstRef& s, const ConstRef& a, Matrix& out) { nn::vstack(s, a, out); }

}  // namespace mtf::agents
