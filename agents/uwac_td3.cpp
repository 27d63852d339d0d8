// UWAC+TD3 (Wu et al. 2021, Eqs. 8 and 9 with TD3 as the base learner): the
// critics carry dropout 0.1; the variance of MC-dropout samples of Q down-weights
// uncertain (out-of-distribution) targets and actions.
#include "agents/uwac_td3.h"

#include <algorithm>
#include <cmath>

namespace mtf::agents {

RowVector uwac_weights(const ConstRef& variance, float beta, float wmin, float wmax) {
  return (-beta * variance.colwise().mean().array()).exp().cwiseMax(wmin).cwiseMin(wmax);
}

nlohmann::json UwacTd3::defaults() {
  nlohmann::json d = Td3::defaults();
  d.update({{"dropout", 0.1},
            {"mc_samples", 10},
            {"beta", 1.0},
            {"weight_min", 0.0},
            {"weight_max", 1.5}});
  return d;
}

UwacTd3::UwacTd3(const nlohmann::json& hp, int S, int A, std::uint64_t seed)
    : Td3(kName, Hyperparameters(kName, defaults(), hp), S, A, seed, "dropout") {
  samples_ = hp_.integer("mc_samples", 2, 1024);
  beta_ = hp_.number("beta", 0.0, 1e6);
  wmin_ = hp_.number("weight_min", 0.0, 1e6);
  wmax_ = hp_.number("weight_max", 0.0, 1e6);
  if (wmax_ < wmin_)
    throw std::invalid_argument("uwac_td3.weight_max: expected a number >= weight_min (" +
                                std::to_string(wmin_) + "), got " + std::to_string(wmax_));
}

// MC dropout over the target critics at (s', a'): the mean gives the target, the
// variance the critic loss's weight.
bool UwacTd3::bootstrap(const ConstRef& target_input, RowVector& value, RowVector& weight) {
  nn::mc_dropout_moments(target_critics_, target_input, samples_, noise_rng_, ws_mc_, mean_, var_);
  weight = uwac_weights(var_, beta_, wmin_, wmax_);
  value = mean_.colwise().minCoeff();
  return true;
}

bool UwacTd3::actor_weights(const ConstRef& input, RowVector& weight) {
  nn::mc_dropout_moments(critics_, input, samples_, noise_rng_, ws_mc_, mean_, var_);
  weight = uwac_weights(var_, beta_, wmin_, wmax_);
  return true;
}

void UwacTd3::q_moments(const ConstRef& states, const ConstRef& actions, int samples, Rng& rng,
                        Matrix& mean, Matrix& variance) const {
  if (samples < 2)
    throw std::invalid_argument("uwac_td3.q_moments: samples must be at least 2, got " +
                                std::to_string(samples));
  Matrix s, in;
  norm_.apply(states, s);
  critic_input(s, actions, in);
  nn::MlpWorkspace ws;
  nn::mc_dropout_moments(critics_, in, samples, rng, ws, mean, variance);
}

RowVector UwacTd3::uncertainty_weights(const ConstRef& states, const ConstRef& actions,
                                       Rng& rng) const {
  Matrix mean, var;
  q_moments(states, actions, samples_, rng, mean, var);
  return uwac_weights(var, beta_, wmin_, wmax_);
}

}  // namespace mtf::agents
