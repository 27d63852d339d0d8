// Behaviour cloning: minimise mean ||mu(s) - a||^2 over the data.
#include "agents/bc.h"

namespace mtf::agents {

nlohmann::json BehaviourCloning::defaults() {
  nlohmann::json d = common_defaults();
  d.update({{"lr", 1e-3}});
  return d;
}

BehaviourCloning::BehaviourCloning(const nlohmann::json& hp, int S, int A, std::uint64_t seed)
    : AgentBase(kName, Hyperparameters(kName, defaults(), hp), S, A, seed) {
  actor_ = nn::TanhActor(spec(S, A), init_rng_);
  opt_ = nn::Adam(actor_.net.params(), {hp_.number("lr", 0.0, 1.0, true)});
}

Losses BehaviourCloning::update(const Batch& b) {
  const float inv_b = 1.0f / static_cast<float>(b.size());
  da_ = actor_.forward(b.state, ws_) - b.action;
  const double loss = da_.squaredNorm() * inv_b;
  da_ *= 2.0f * inv_b;
  actor_.backward(b.state, da_, ws_);
  opt_.step();
  return {{"bc", loss}};
}

void BehaviourCloning::act_normalised(const ConstRef& s, Matrix& a, Rng&) const { actor_.infer(s, a); }

}  // namespace mtf::agents
