// The foreign MLP policy (mlp_policy.h, docs/policy-format.md).
#include "agents/mlp_policy.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>

#include "core/json_reader.h"
#include "core/state_features.h"

namespace mtf::agents {

namespace jr = json_reader;

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct ActivationName {
  const char* name;
  MlpPolicy::Activation kind;
};
constexpr ActivationName kActivations[] = {
    {"identity", MlpPolicy::Activation::kIdentity}, {"relu", MlpPolicy::Activation::kRelu},
    {"tanh", MlpPolicy::Activation::kTanh},         {"sigmoid", MlpPolicy::Activation::kSigmoid},
    {"elu", MlpPolicy::Activation::kElu},           {"leaky_relu", MlpPolicy::Activation::kLeakyRelu},
    {"gelu", MlpPolicy::Activation::kGelu},         {"silu", MlpPolicy::Activation::kSilu}};

float activate(MlpPolicy::Activation a, float x) {
  switch (a) {
    case MlpPolicy::Activation::kIdentity: return x;
    case MlpPolicy::Activation::kRelu: return x > 0 ? x : 0.0f;
    case MlpPolicy::Activation::kTanh: return std::tanh(x);
    case MlpPolicy::Activation::kSigmoid: return 1.0f / (1.0f + std::exp(-x));
    case MlpPolicy::Activation::kElu: return x > 0 ? x : std::expm1(x);
    case MlpPolicy::Activation::kLeakyRelu: return x > 0 ? x : 0.01f * x;
    case MlpPolicy::Activation::kGelu: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case MlpPolicy::Activation::kSilu: return x / (1.0f + std::exp(-x));
  }
  return x;
}

/// A float array of exactly `n` finite numbers at `node`.
std::vector<float> floats(const jr::Node& node, std::size_t n, const std::string& what) {
  if (node.missing() || !node.value->is_array() || node.value->size() != n)
    node.fail("an array of " + std::to_string(n) + " " + what,
              node.missing() ? std::string("nothing (the key is required)")
                             : jr::show(*node.value) + (node.value->is_array()
                                                            ? " (length " + std::to_string(node.value->size()) + ")"
                                                            : std::string()));
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const jr::Value& v = (*node.value)[i];
    const double x = v.is_number() ? v.get<double>() : std::nan("");
    if (!v.is_number() || !std::isfinite(x) || std::fabs(x) > 3.4e38) node.at(i).fail("a finite float32 number");
    out[i] = static_cast<float>(x);
  }
  return out;
}

}  // namespace

MlpPolicy::MlpPolicy(std::vector<Layer> layers, std::vector<float> mean, std::vector<float> stddev, Output output)
    : layers_(std::move(layers)), mean_(std::move(mean)), output_(output) {
  if (layers_.empty()) throw std::invalid_argument("MlpPolicy: at least one layer");
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    if (L.in < 1 || L.out < 1 || L.weight.size() != static_cast<std::size_t>(L.in) * L.out ||
        L.bias.size() != static_cast<std::size_t>(L.out) || (l > 0 && L.in != layers_[l - 1].out))
      throw std::invalid_argument("MlpPolicy: layer " + std::to_string(l) + " has inconsistent shapes");
  }
  const std::size_t S = static_cast<std::size_t>(state_dim());
  if (mean_.empty()) mean_.assign(S, 0.0f);
  if (stddev.empty()) stddev.assign(S, 1.0f);
  if (mean_.size() != S || stddev.size() != S)
    throw std::invalid_argument("MlpPolicy: normalisation of another size than the state");
  inv_std_.resize(S);
  for (std::size_t i = 0; i < S; ++i) inv_std_[i] = 1.0f / stddev[i];
}

void MlpPolicy::act(std::span<const float> state, std::span<float> action, Rng& rng, ActionInfo* info) const {
  Rng* rngs[1] = {&rng};
  ActionInfo* infos[1] = {info};
  act_batch(state, action, rngs, info ? std::span<ActionInfo* const>(infos) : std::span<ActionInfo* const>());
}

void MlpPolicy::act_batch(std::span<const float> states, std::span<float> actions, std::span<Rng* const> rngs,
                          std::span<ActionInfo* const> infos) const {
  const Eigen::Index n = static_cast<Eigen::Index>(rngs.size());
  if (n == 0) return;
  const Eigen::Index S = state_dim();
  // Rows are states (the batch layout of core/policy.h: row i's state is contiguous).
  RowMatrix x = Eigen::Map<const RowMatrix>(states.data(), n, S);
  for (Eigen::Index j = 0; j < S; ++j)
    x.col(j) = (x.col(j).array() - mean_[static_cast<std::size_t>(j)]) * inv_std_[static_cast<std::size_t>(j)];
  for (const Layer& L : layers_) {
    const Eigen::Map<const RowMatrix> w(L.weight.data(), L.out, L.in);
    const Eigen::Map<const Eigen::RowVectorXf> b(L.bias.data(), L.out);
    RowMatrix y = x * w.transpose();
    y.rowwise() += b;
    if (L.activation != Activation::kIdentity) y = y.unaryExpr([&](float v) { return activate(L.activation, v); });
    x = std::move(y);
  }
  const Eigen::Index d = action_dim();
  Eigen::Map<RowMatrix> a(actions.data(), n, d);
  if (output_ == Output::kTanh) a = x.array().tanh().matrix();
  else a = x.array().max(-1.0f).min(1.0f).matrix();
  for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(infos.size()); ++i)
    if (ActionInfo* info = infos[static_cast<std::size_t>(i)]) {
      // A deterministic policy: its own action is its mean, the density a point mass.
      if (info->baseline.size() == static_cast<std::size_t>(d)) {
        std::copy_n(actions.data() + i * d, d, info->baseline.begin());
        info->has_baseline = true;
      }
      info->log_density = std::numeric_limits<double>::infinity();
    }
}

bool looks_like_json(const std::string& text) {
  for (const char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    return c == '{';
  }
  return false;
}

std::shared_ptr<MlpPolicy> parse_mlp_policy(const std::string& text, const std::string& origin, int state_dim) {
  const jr::Source source{origin, &jr::raise_as<std::invalid_argument>};
  const jr::Value doc = jr::parse(text, source);
  const jr::Node root{&doc, "", &source};
  const jr::Obj top(root, {"format", "version", "state_dim", "action_dim", "state_features", "normalisation", "layers",
                           "output", "metadata"},
                    "an MLP policy object {\"format\": \"mtf-mlp-policy\", ...}");
  const jr::Node format = top.at("format");
  if (format.missing() || !format.value->is_string() || format.value->get<std::string>() != kMlpPolicyFormat)
    format.fail("\"mtf-mlp-policy\" (docs/policy-format.md)");
  const jr::Node version = top.at("version");
  if (version.missing()) version.fail("the format version, 1");
  const int v = version.integer(jr::int_range(1));
  if (v > kMlpPolicyVersion)
    version.fail("a format version this build reads (up to " + std::to_string(kMlpPolicyVersion) +
                     "); update mtfsim or export the policy in version 1",
                 std::to_string(v));
  const int S = top.at("state_dim").integer(jr::int_range(1, 1 << 20));
  if (S != state_dim)
    top.at("state_dim").fail(std::to_string(state_dim) + ", the simulator's state dimension (core/state_features.h)",
                             std::to_string(S));
  const int A = top.at("action_dim").integer(jr::int_range(1, 1 << 20));
  if (const jr::Node names = top.at("state_features"); !names.missing()) {
    const std::size_t n = names.array("an array of the state features' names, in the simulator's order", 1);
    if (n != static_cast<std::size_t>(S))
      names.fail("an array of " + std::to_string(S) + " feature names", std::to_string(n) + " names");
    if (S == kStateDim)
      for (std::size_t i = 0; i < n; ++i) {
        const std::string got = names.at(i).string("a feature name");
        if (got != kStateFeatures[i].name)
          names.at(i).fail(jr::in_quotes(kStateFeatures[i].name) +
                               " (the simulator's feature " + std::to_string(i) +
                               "; the policy was trained on states in another order or of another version)",
                           jr::in_quotes(got));
      }
  }
  std::vector<float> mean, stddev;
  if (const auto norm = jr::block(top, "normalisation", {"mean", "std"})) {
    mean = floats(norm->at("mean"), static_cast<std::size_t>(S), "numbers (the state's mean)");
    stddev = floats(norm->at("std"), static_cast<std::size_t>(S), "numbers > 0 (the state's standard deviation)");
    for (std::size_t i = 0; i < stddev.size(); ++i)
      if (!(stddev[i] > 0)) norm->at("std").at(i).fail("a number > 0");
  }
  const jr::Node layers = top.at("layers");
  const std::size_t L = layers.array("an array of at least 1 layer {weight, bias, activation}", 1);
  std::vector<MlpPolicy::Layer> out;
  int in = S;
  std::vector<std::string_view> act_names;
  for (const auto& a : kActivations) act_names.push_back(a.name);
  for (std::size_t l = 0; l < L; ++l) {
    const jr::Obj lo(layers.at(l), {"weight", "bias", "activation"}, "a layer {weight, bias, activation}");
    const jr::Node w = lo.at("weight");
    const std::size_t rows = w.array("an array of rows (out x in, PyTorch's nn.Linear.weight layout)", 1);
    if (l + 1 == L && rows != static_cast<std::size_t>(A))
      w.fail("an array of " + std::to_string(A) + " rows (action_dim: the last layer's outputs)",
             std::to_string(rows) + " rows");
    MlpPolicy::Layer layer;
    layer.in = in;
    layer.out = static_cast<int>(rows);
    layer.weight.reserve(rows * static_cast<std::size_t>(in));
    for (std::size_t r = 0; r < rows; ++r) {
      const std::vector<float> row =
          floats(w.at(r), static_cast<std::size_t>(in),
                 "numbers (a row holds one weight per input: " + std::string(l == 0 ? "state_dim" : "the previous layer's outputs") + ")");
      layer.weight.insert(layer.weight.end(), row.begin(), row.end());
    }
    layer.bias = floats(lo.at("bias"), rows, "numbers (one per output)");
    const jr::Node act = lo.at("activation");
    const std::string name = act.missing() ? std::string("identity") : act.string("an activation name");
    const auto it = std::find_if(std::begin(kActivations), std::end(kActivations),
                                 [&](const ActivationName& a) { return name == a.name; });
    if (it == std::end(kActivations)) {
      const std::string_view near = jr::closest(name, act_names);
      act.fail("an activation: " + jr::join_quoted(act_names) +
                   (near.empty() ? "" : " (did you mean " + jr::in_quotes(near) + "?)"),
               jr::in_quotes(name));
    }
    layer.activation = it->kind;
    in = layer.out;
    out.push_back(std::move(layer));
  }
  const jr::Node output = top.at("output");
  const std::string squash = output.missing() ? std::string() : output.string("\"tanh\" or \"clip\"");
  if (squash != "tanh" && squash != "clip")
    output.fail("\"tanh\" or \"clip\" (how the last layer's outputs go into the action box [-1, 1])");
  return std::make_shared<MlpPolicy>(std::move(out), std::move(mean), std::move(stddev),
                                     squash == "tanh" ? MlpPolicy::Output::kTanh : MlpPolicy::Output::kClip);
}

}  // namespace mtf::agents
