// Golden file: a tiny scenario's summary metrics, compared with the committed
// tests/data/tiny_summary.golden.json. Any change to the simulator's behaviour
// (user model, ranking, streams) shows up here.
//
// To refresh it on purpose, after checking that the change is intended:
//   MTF_UPDATE_GOLDEN=1 ./build/tests/sim_tests -tc="*golden*"
// and commit the new file with a note on why the numbers moved. Counts are
// compared exactly; averages to a relative 1e-8, which absorbs the rounding
// differences between builds (FMA or not, AVX-512 or not: up to 2e-9 was
// measured, between GCC -march=native and the portable build of the asan
// preset) while any change of behaviour moves them by far more.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_world.h"

using namespace mtf;

TEST_CASE("the tiny scenario's summary metrics match the golden file") {
  const Scenario s = load_scenario(test::source_dir() / "tests" / "data" / "tiny.json");
  Simulator sim(s);
  RunOptions o;
  o.threads = 2;
  const RunResult r = sim.run(o, nullptr);
  nlohmann::ordered_json got;
  got["requests"] = r.requests;
  got["sessions"] = r.sessions;
  for (const GroupSummary& g : r.groups)
    for (const auto& [name, value] : OnlineMetrics::rows(g)) got["groups"][g.name][name] = value;

  const auto path = test::source_dir() / "tests" / "data" / "tiny_summary.golden.json";
  if (const char* update = std::getenv("MTF_UPDATE_GOLDEN"); update && std::string(update) == "1") {
    std::ofstream(path) << got.dump(2) << "\n";
    MESSAGE("golden file rewritten: " << path.string());
    return;
  }
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "missing " << path.string() << " (create it with MTF_UPDATE_GOLDEN=1)");
  const nlohmann::json want = nlohmann::json::parse(in);
  CHECK(got["requests"].get<std::int64_t>() == want["requests"].get<std::int64_t>());
  CHECK(got["sessions"].get<std::int64_t>() == want["sessions"].get<std::int64_t>());
  for (const auto& [group, metrics] : want["groups"].items())
    for (const auto& [name, value] : metrics.items()) {
      INFO(group << "." << name);
      CHECK(got["groups"][group][name].get<double>() == doctest::Approx(value.get<double>()).epsilon(1e-8));
    }
}
