// Golden file: a tiny scenario's summary metrics and the lifts of its second
// group over the first (the table `mtfsim run` prints below the summary),
// compared with the committed tests/data/tiny_summary.golden.json. Any change to
// the simulator's behaviour (user model, ranking, streams) or to the statistics
// shows up here.
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

#include "metrics/user_metrics.h"
#include "test_world.h"

using namespace mtf;

TEST_CASE("the tiny scenario's summary metrics match the golden file") {
  const Scenario s = load_scenario(test::source_dir() / "tests" / "data" / "tiny.json");
  Simulator sim(s);
  sim.track_user_totals(true);  // as mtfsim run does, for the lifts
  RunOptions o;
  o.threads = 2;
  const RunResult r = sim.run(o, nullptr);
  nlohmann::ordered_json got;
  got["requests"] = r.requests;
  got["sessions"] = r.sessions;
  for (const GroupSummary& g : r.groups)
    for (const auto& [name, value] : OnlineMetrics::rows(g)) got["groups"][g.name][name] = value;
  for (const GroupLift& l : lifts_against(sim.user_totals(), sim.group_assignment(),
                                          static_cast<int>(s.groups.size()), 0, s.days)) {
    REQUIRE(l.lift);  // every lift of the tiny scenario is defined
    got["lifts"][s.groups[l.group].name][l.metric->name] = {
        {"lift", l.lift->lift}, {"ci_low", l.lift->ci_low}, {"ci_high", l.lift->ci_high},
        {"p_value", l.lift->p_value}};
  }

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
  // Named copies rather than structured bindings: INFO captures them in a
  // lambda, which clang before 16 refuses for structured bindings.
  for (const auto& g : want["groups"].items())
    for (const auto& m : g.value().items()) {
      const std::string group = g.key(), name = m.key();
      const nlohmann::json& value = m.value();
      INFO(group << "." << name);
      CHECK(got["groups"][group][name].get<double>() == doctest::Approx(value.get<double>()).epsilon(1e-8));
    }
  REQUIRE_MESSAGE(want.contains("lifts"), "no lifts in the golden file (refresh it with MTF_UPDATE_GOLDEN=1)");
  CHECK(got["lifts"].size() == want["lifts"].size());
  for (const auto& g : want["lifts"].items())
    for (const auto& m : g.value().items())
      for (const auto& f : m.value().items()) {
        const std::string group = g.key(), name = m.key(), field = f.key();
        const nlohmann::json& value = f.value();
        INFO("lifts." << group << "." << name << "." << field);
        CHECK(got["lifts"][group][name][field].get<double>() ==
              doctest::Approx(value.get<double>()).epsilon(1e-8));
      }
}
