// Seeds of the agent-file fuzz target: one small trained agent file per agent
// type (two hidden layers of 4 units, two critics where the agent has an
// ensemble, 3 gradient steps on 16 synthetic transitions: the training section
// holds real optimiser moments and counters). Fixed seeds: the same files on
// every run.
//
//   mtf_fuzz_agent_seeds OUT_DIR
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/agent.h"
#include "agents/dataset.h"
#include "core/state_features.h"
#include "core/transitions.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out = argv[1];
  std::filesystem::create_directories(out);
  const int S = mtf::kStateDim, A = 3;
  std::vector<mtf::TransitionRow> rows;
  for (int i = 0; i < 16; ++i) {
    mtf::TransitionRow r;
    r.user = i / 4;
    r.step = i % 4;
    r.state.assign(S, 0.1f * static_cast<float>(i % 5));
    r.state.back() = 1.0f;
    r.next_state = r.state;
    r.next_state[0] += 0.1f;
    r.action.assign(A, 0.05f * static_cast<float>(i % 3) - 0.05f);
    r.baseline.assign(A, 0.0f);
    r.lower.assign(A, -0.15f);
    r.upper.assign(A, 0.15f);
    r.log_density = 0.5;
    r.reward = static_cast<float>(i % 4);
    r.done = i % 4 == 3;
    rows.push_back(std::move(r));
  }
  const mtf::agents::Dataset data(rows);
  for (const std::string& name : mtf::agents::agent_names()) {
    nlohmann::json hp = {{"hidden", {4, 4}}, {"batch_size", 8}};
    if (name == "integratedrl_mtf") hp["critics"] = 2;
    std::unique_ptr<mtf::agents::Agent> agent = mtf::agents::make_agent(name, hp, S, A, 7);
    agent->train(data, 3);
    agent->save(out / (name + ".mtfa"));
  }
  return 0;
}
