// Small offline problems with known answers, shared by the agents' tests.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "agents/agent.h"
#include "agents/agent_base.h"
#include "agents/nn/heads.h"
#include "core/transitions.h"
#include "core/rng.h"

namespace mtf::agents::testing {

/// Every parameter's bits, in the agent's fixed order (name, then values).
inline std::string param_bytes(const Agent& agent) {
  std::string out;
  for (const auto& [name, p] : dynamic_cast<const AgentBase&>(agent).named_params()) {
    out += name;
    out.append(reinterpret_cast<const char*>(p->value.data()), static_cast<std::size_t>(p->value.size()) * sizeof(float));
  }
  return out;
}

/// One-step contextual bandit: s ~ U[-1,1]^2, a in [-1,1]^2, r = -10 ||a - a*(s)||^2
/// with a*(s) = 0.5 s. Behaviour (IntegratedRL-MTF Formula 3): baseline mu_bp(s) = 0.3 s
/// plus U(-0.4, 0.4) per dimension, so the data cover the optimum (at most 0.2
/// from the baseline per dimension, 0.2 inside the bounds) but the baseline is
/// not optimal. The factor 10 gives advantages of order 1, the scale IQL's
/// temperature 3 is meant for.
inline Vector bandit_optimum(const Vector& s) { return 0.5f * s; }

inline std::vector<TransitionRow> bandit_rows(int n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<TransitionRow> rows(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    TransitionRow& r = rows[static_cast<std::size_t>(i)];
    r.user = i;
    r.state = {2 * rng.uniform01() - 1, 2 * rng.uniform01() - 1};
    r.baseline = {0.3f * r.state[0], 0.3f * r.state[1]};
    r.lower = {r.baseline[0] - 0.4f, r.baseline[1] - 0.4f};
    r.upper = {r.baseline[0] + 0.4f, r.baseline[1] + 0.4f};
    r.action = {r.baseline[0] + 0.8f * rng.uniform01() - 0.4f, r.baseline[1] + 0.8f * rng.uniform01() - 0.4f};
    r.next_state = r.state;
    const float d0 = r.action[0] - 0.5f * r.state[0], d1 = r.action[1] - 0.5f * r.state[1];
    r.reward = -10.0f * (d0 * d0 + d1 * d1);
    r.done = true;
  }
  return rows;
}

/// Mean Euclidean distance between the agent's action and a*(s) over a grid of states.
inline double bandit_error(const Agent& agent) {
  Matrix s(2, 49);
  int k = 0;
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 7; ++j, ++k) {
      s(0, k) = -0.9f + 0.3f * i;
      s(1, k) = -0.9f + 0.3f * j;
    }
  Matrix a;
  Rng rng(12345);
  agent.act_batch(s, a, rng);
  return (a - 0.5f * s).colwise().norm().mean();
}

/// The offline trap: s ~ U[-1,1], behaviour a ~ U(-0.1, 0.1) (bounds [-0.1, 0.1]
/// around baseline 0), r = a. A critic fitted on the data is increasing in a and
/// extrapolates upward off the data, so a greedy actor walks out of the support.
inline std::vector<TransitionRow> trap_rows(int n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<TransitionRow> rows(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    TransitionRow& r = rows[static_cast<std::size_t>(i)];
    r.user = i;
    r.state = {2 * rng.uniform01() - 1};
    r.action = {0.2f * rng.uniform01() - 0.1f};
    r.next_state = r.state;
    r.reward = r.action[0];
    r.done = true;
    r.baseline = {0};
    r.lower = {-0.1f};
    r.upper = {0.1f};
  }
  return rows;
}

/// Mean distance of the agent's actions from the data's support [-0.1, 0.1].
inline double trap_distance(const Agent& agent) {
  Matrix s(1, 21);
  for (int k = 0; k < 21; ++k) s(0, k) = -1.0f + 0.1f * k;
  Matrix a;
  Rng rng(54321);
  agent.act_batch(s, a, rng);
  return (a.array().abs() - 0.1f).cwiseMax(0.0f).mean();
}

/// A deterministic chain: K one-hot states, reward 1 per step, the episode ends
/// after state K-1; actions U[-1,1] do not matter. Q*(k, a) = (1 - gamma^(K-k)) / (1 - gamma).
inline std::vector<TransitionRow> chain_rows(int K, int per_state, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<TransitionRow> rows;
  for (int rep = 0; rep < per_state; ++rep)
    for (int k = 0; k < K; ++k) {
      TransitionRow r;
      r.user = rep;
      r.step = k;
      r.state.assign(static_cast<std::size_t>(K), 0.0f);
      r.state[static_cast<std::size_t>(k)] = 1.0f;
      r.next_state.assign(static_cast<std::size_t>(K), 0.0f);
      if (k + 1 < K) r.next_state[static_cast<std::size_t>(k + 1)] = 1.0f;
      r.action = {2 * rng.uniform01() - 1};
      r.reward = 1.0f;
      r.done = k + 1 == K;
      r.baseline = {0};
      r.lower = {-1};
      r.upper = {1};
      rows.push_back(r);
    }
  return rows;
}

}  // namespace mtf::agents::testing
