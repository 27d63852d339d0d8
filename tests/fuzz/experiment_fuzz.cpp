// Fuzz target: the experiment block (experiments/experiment_spec.cpp), as
// `mtfsim run` reads it: a whole scenario is parsed, then its "experiment" block
// with the agents' hyperparameters checked (make_agent builds each agent).
// Input: scenario JSON text (seeds: the shipped paper scenarios). Expected
// outcomes for bad input: ScenarioError, ExperimentError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "experiments/experiment.h"
#include "sim/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const mtf::Scenario sc = mtf::parse_scenario(text, "fuzz.json");
    if (sc.experiment_json.empty()) return 0;
    const mtf::experiments::ExperimentSpec spec = mtf::experiments::parse_experiment(sc, "fuzz.json");
    (void)spec;
  } catch (const mtf::ScenarioError&) {
  } catch (const mtf::experiments::ExperimentError&) {
  }
  return 0;
}
