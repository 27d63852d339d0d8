// A plain MLP policy from a file any framework can write: the testbed's
// foreign-policy format (docs/policy-format.md), so a policy trained in
// PyTorch or JAX runs in the simulator (tools/export_torch_policy.py writes it).
//
// The file is JSON:
//   {"format": "mtf-mlp-policy", "version": 1,
//    "state_dim": 32, "action_dim": d,
//    "state_features": [names...],            optional; must match the simulator's, in order
//    "normalisation": {"mean": [S], "std": [S]}, optional; x = (s - mean) / std, std > 0
//    "layers": [{"weight": [[in] x out rows], "bias": [out], "activation": "relu"}, ...],
//    "output": "tanh" | "clip"}               squashing into [-1, 1]
// A layer computes activation(W x + b) with W stored as out rows of in numbers
// (PyTorch's nn.Linear.weight layout). Activations: identity, relu, tanh,
// sigmoid, elu, leaky_relu (slope 0.01, PyTorch's default), gelu (exact, erf),
// silu. Computed in float32, as the agents are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/policy.h"

namespace mtf::agents {

/// The format's name and the version this build reads and writes.
inline constexpr const char* kMlpPolicyFormat = "mtf-mlp-policy";
inline constexpr int kMlpPolicyVersion = 1;

class MlpPolicy final : public Policy {
 public:
  enum class Activation { kIdentity, kRelu, kTanh, kSigmoid, kElu, kLeakyRelu, kGelu, kSilu };
  enum class Output { kTanh, kClip };
  struct Layer {
    int in = 0, out = 0;
    std::vector<float> weight;  ///< out x in, row-major (row o holds the weights into unit o)
    std::vector<float> bias;    ///< out
    Activation activation = Activation::kIdentity;
  };

  MlpPolicy(std::vector<Layer> layers, std::vector<float> mean, std::vector<float> stddev, Output output);

  std::string name() const override { return "mlp"; }
  int action_dim() const override { return layers_.back().out; }
  int state_dim() const { return layers_.front().in; }
  std::size_t layers() const { return layers_.size(); }
  void act(std::span<const float> state, std::span<float> action, Rng& rng, ActionInfo* info) const override;
  void act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                 std::span<ActionInfo* const> infos) const override;

 private:
  std::vector<Layer> layers_;
  std::vector<float> mean_, inv_std_;
  Output output_;
};

/// True when `text` starts (after white space) with a JSON object: an MLP
/// policy file rather than a binary agent file.
bool looks_like_json(const std::string& text);

/// Reads an MLP policy file's text. Every error is a std::invalid_argument in
/// the JSON reader's form: `<origin>: <path>: expected <what>, got <found>`.
/// `state_dim` is the simulator's state dimension the policy must read.
std::shared_ptr<MlpPolicy> parse_mlp_policy(const std::string& text, const std::string& origin, int state_dim);

}  // namespace mtf::agents
