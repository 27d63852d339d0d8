// Fuzz target: agent files (*.mtfa, agents/agent_base.cpp load_agent), as
// `mtfsim evaluate --policy FILE.mtfa` loads them, then the loaded agent acts and
// is cloned. Input: an agent file. Expected outcome for a bad file: AgentFileError.
//
// The file ends with a checksum of everything before it; the target rewrites it
// for every input, so that mutations reach the parser behind the check instead
// of stopping at "checksum mismatch". The hash is the format's (FNV-1a, 64 bits).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "agents/agent.h"
#include "core/rng.h"
#include "fuzz_support.h"

namespace {

std::uint64_t fnv1a(const std::uint8_t* p, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static mtf::fuzz::InputFile file("mtf-agent");
  std::vector<std::uint8_t> bytes(data, data + size);
  if (bytes.size() >= 16) {
    const std::uint64_t h = fnv1a(bytes.data(), bytes.size() - 8);
    std::memcpy(bytes.data() + bytes.size() - 8, &h, 8);
  }
  std::unique_ptr<mtf::agents::Agent> agent;
  try {
    agent = mtf::agents::load_agent(file.write(bytes.data(), bytes.size()));
  } catch (const mtf::agents::AgentFileError&) {
    return 0;
  }
  // What evaluate does with it: act on a state (the bias feature set, as the
  // simulator's states have it), here also cloned as the experiments do.
  const int S = agent->state_dim(), A = agent->action_dim();
  std::vector<float> state(static_cast<std::size_t>(S), 0.0f), action(static_cast<std::size_t>(A), 0.0f);
  state.back() = 1.0f;
  mtf::Rng rng(1);
  agent->act(state, action, rng, nullptr);
  const std::unique_ptr<mtf::agents::Agent> copy = agent->clone();
  std::vector<float> again(action.size(), 0.0f);
  mtf::Rng rng2(1);
  copy->act(state, again, rng2, nullptr);
  return 0;
}
