// Fuzz target: the scenario parser (sim/scenario.cpp, what `mtfsim run` reads).
// Input: scenario JSON text. Expected outcome for bad input: ScenarioError.
// Property: an accepted scenario survives the round trip through
// scenario_to_json unchanged (the text the run database stores is the scenario
// that ran).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "sim/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  mtf::Scenario sc;
  try {
    sc = mtf::parse_scenario(text, "fuzz.json");
  } catch (const mtf::ScenarioError&) {
    return 0;
  }
  const std::string written = mtf::scenario_to_json(sc);
  mtf::Scenario again;
  try {
    again = mtf::parse_scenario(written, "written.json");
  } catch (const mtf::ScenarioError& e) {
    mtf::fuzz::property_failed("scenario_to_json wrote a scenario parse_scenario rejects", e.what() + ("\n" + written));
  }
  if (!(again == sc)) mtf::fuzz::property_failed("the scenario changed in the round trip", written);
  return 0;
}
