// Tests of scenario loading: defaults, validation messages (path, expected,
// found), JSON syntax errors with line and column, and the round trip through
// scenario_to_json.
#include "sim/scenario.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>

using namespace mtf;
using Json = nlohmann::ordered_json;

namespace {

/// The smallest valid scenario: the two required blocks.
Json minimal() {
  return Json::parse(R"({
    "fusion": {"dims": [{"task": "play", "term": "pow", "range": [0, 2]},
                        {"task": "skip", "term": "pow", "range": [-2, 0.5]}]},
    "groups": [{"name": "control"}]
  })");
}

/// The message parse_scenario gives for `j`, or "(accepted)".
std::string error_for_text(const std::string& text) {
  try {
    parse_scenario(text, "test.json");
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "(accepted)";
}
std::string error_for(const Json& j) { return error_for_text(j.dump(2)); }

}  // namespace

TEST_CASE("a minimal scenario takes every other value from the struct defaults") {
  const Scenario s = parse_scenario(minimal().dump());
  const Scenario d;
  CHECK(s.name == d.name);
  CHECK(s.seed == d.seed);
  CHECK(s.days == d.days);
  CHECK(s.population.size == d.population.size);
  REQUIRE(s.population.segments.size() == 1);  // one default segment
  CHECK(s.population.segments[0] == SegmentParams{});
  CHECK(s.catalogue == d.catalogue);
  CHECK(s.retrieval == d.retrieval);
  CHECK(s.mtl == d.mtl);
  CHECK(s.reward == d.reward);
  CHECK(s.user_model == d.user_model);
  CHECK(s.record == d.record);
  CHECK(s.fusion.form == FusionForm::kProduct);
  CHECK(s.fusion.fixed_weight == d.fusion.fixed_weight);
  REQUIRE(s.action_dim() == 2);
  CHECK(s.fusion.dims[1].task == Task::kSkip);
  CHECK_FALSE(s.fusion.dims[1].is_bias);
  CHECK(s.fusion.dims[1].lo == -2.0);
  CHECK(s.fusion.dims[1].hi == 0.5);
  REQUIRE(s.groups.size() == 1);
  CHECK(s.groups[0].name == "control");
  CHECK(s.groups[0].share == 1.0);
  CHECK(s.groups[0].policy.kind == PolicyKind::kBaseline);
  CHECK(s.groups[0].policy.json == R"({"type":"baseline"})");
}

TEST_CASE("an unknown key is rejected, naming the closest known key when there is one") {
  Json j = minimal();
  j["dasy"] = 3;
  CHECK(error_for(j) ==
        R"(test.json: dasy: expected a known key (did you mean "days"?), got unknown key "dasy")");

  j = minimal();
  j["population"]["segments"] = Json::array({Json::object(), {{"name", "b"}, {"shaer", 0.5}}});
  CHECK(error_for(j) == "test.json: population.segments[1].shaer: expected a known key (did you "
                        "mean \"share\"?), got unknown key \"shaer\"");

  j = minimal();
  j["record"] = {{"everything", true}};
  CHECK(error_for(j) == "test.json: record.everything: expected one of the known keys: "
                        "transitions, user_days, index_transitions, impressions, got unknown key \"everything\"");

  j = minimal();
  j["mtl"]["tasks"]["likes"] = {{"noise", 0.1}};
  CHECK(error_for(j) == "test.json: mtl.tasks.likes: expected a known key (did you mean "
                        "\"like\"?), got unknown key \"likes\"");
}

TEST_CASE("a value of the wrong type is rejected with what was expected and what was found") {
  Json j = minimal();
  j["days"] = "3";
  CHECK(error_for(j) == R"(test.json: days: expected an integer in [1, 3650], got "3")");

  j = minimal();
  j["days"] = 2.5;
  CHECK(error_for(j) == "test.json: days: expected an integer in [1, 3650], got 2.5");

  j = minimal();
  j["record"] = {{"transitions", 1}};
  CHECK(error_for(j) == "test.json: record.transitions: expected true or false, got 1");

  j = minimal();
  j["catalogue"] = Json::array({1, 2});
  CHECK(error_for(j) == "test.json: catalogue: expected an object, got [1,2]");

  j = minimal();
  j["seed"] = -1;
  CHECK(error_for(j) == "test.json: seed: expected an integer in [0, 18446744073709551615], got -1");

  CHECK(error_for_text("[1, 2]") == "test.json: (top level): expected a JSON object (the scenario), got [1,2]");
}

TEST_CASE("an out-of-range value is rejected with the allowed range") {
  Json j = minimal();
  j["population"]["segments"] = Json::array({Json::object(), {{"name", "b"}, {"share", 0}}});
  CHECK(error_for(j) == "test.json: population.segments[1].share: expected a number in (0, 1000000], got 0");

  j = minimal();
  j["population"]["segments"] = Json::array({{{"preferred_hour", 24}}});
  CHECK(error_for(j) ==
        "test.json: population.segments[0].preferred_hour: expected a number in [0, 24), got 24");

  j = minimal();
  j["population"]["segments"] = Json::array({{{"age_mix", {0.5, 0.5, 0.5, 0.5}}}});
  CHECK(error_for(j) == "test.json: population.segments[0].age_mix: expected an array of 4 "
                        "probabilities (age groups 0..3) summing to 1, got [0.5,0.5,0.5,0.5] "
                        "(sum 2)");

  j = minimal();
  j["retrieval"] = {{"candidates", 4}};  // shown stays at its default, 6
  CHECK(error_for(j) == "test.json: retrieval.candidates: expected an integer in "
                        "[retrieval.shown = 6, catalogue.items = 20000], got 4");

  j = minimal();
  j["catalogue"] = {{"topics", 2}, {"topic_graph_degree", 1}};
  j["population"]["segments"] = Json::array({Json::object()});  // interest_topics 3 by default
  CHECK(error_for(j) == "test.json: population.segments[0].interest_topics: expected an integer "
                        "in [1, catalogue.topics = 2], got 3 (the default)");

  j = minimal();
  j["fusion"]["dims"][0]["range"] = {2, 1};
  CHECK(error_for(j) ==
        "test.json: fusion.dims[0].range: expected an array [lo, hi] with lo < hi, got [2,1]");

  j = minimal();
  j["days"] = 3651;
  CHECK(error_for(j) == "test.json: days: expected an integer in [1, 3650], got 3651");

  j = minimal();
  j["catalogue"] = {{"items", 1e12}};
  CHECK(error_for(j) ==
        "test.json: catalogue.items: expected an integer in [100, 10000000], got 1000000000000.0");
}

TEST_CASE("a constant policy needs exactly one action value in [-1, 1] per fusion dimension") {
  Json j = minimal();
  j["groups"][0]["policy"] = {{"type", "constant"}, {"action", {0.5}}};
  CHECK(error_for(j) == "test.json: groups[0].policy.action: expected an array of 2 numbers in "
                        "[-1, 1] (one per fusion.dims entry), got [0.5] (length 1)");

  j["groups"][0]["policy"]["action"] = {0.5, 1.5};
  CHECK(error_for(j) ==
        "test.json: groups[0].policy.action[1]: expected a number in [-1, 1], got 1.5");

  j["groups"][0]["policy"].erase("action");
  CHECK(error_for(j) == "test.json: groups[0].policy.action: expected an array of 2 numbers in "
                        "[-1, 1] (one per fusion.dims entry), got nothing (the key is required)");

  j["groups"][0]["policy"] = {{"type", "constant"}, {"action", {1, -0.25}}};
  const Scenario s = parse_scenario(j.dump());
  CHECK(s.groups[0].policy.kind == PolicyKind::kConstant);
  CHECK(s.groups[0].policy.action == std::vector<double>{1.0, -0.25});
  CHECK(s.groups[0].policy.json == R"({"type":"constant","action":[1.0,-0.25]})");
}

TEST_CASE("an unknown policy type is rejected with the list of known types") {
  Json j = minimal();
  j["groups"][0]["policy"] = {{"type", "td3"}};
  CHECK(error_for(j) == "test.json: groups[0].policy.type: expected a policy type: \"constant\", "
                        "\"baseline\", \"gaussian\", \"random\", \"bounded_uniform\" or \"agent\", got "
                        "\"td3\"");
  j["groups"][0]["policy"] = {{"type", "constnat"}};
  CHECK(error_for(j) == "test.json: groups[0].policy.type: expected a policy type: \"constant\", "
                        "\"baseline\", \"gaussian\", \"random\", \"bounded_uniform\" or \"agent\" (did you "
                        "mean \"constant\"?), got \"constnat\"");
  j["groups"][0]["policy"] = {{"type", "baseline"}, {"action", {0, 0}}};
  CHECK(error_for(j) == "test.json: groups[0].policy.action: expected one of the known keys: "
                        "type, got unknown key \"action\"");
}

TEST_CASE("exploration policy types parse with their defaults filled in and round-trip") {
  Json j = minimal();
  j["groups"] = Json::parse(R"([
    {"name": "g", "policy": {"type": "gaussian"}},
    {"name": "g2", "policy": {"around": {"type": "constant", "action": [0.5, -1]}, "sigma": 0.1,
                              "type": "gaussian"}},
    {"name": "r", "policy": {"type": "random"}},
    {"name": "b", "policy": {"type": "bounded_uniform", "bound": 0.25}},
    {"name": "b2", "policy": {"type": "bounded_uniform", "bound": [0.1, 2]}}
  ])");
  const Scenario s = parse_scenario(j.dump());
  const auto& g = s.groups;
  REQUIRE(g.size() == 5);
  CHECK(g[0].policy.kind == PolicyKind::kGaussian);
  CHECK(g[0].policy.sigma == 0.2);  // IntegratedRL-MTF Dataset 1
  REQUIRE(g[0].policy.around.size() == 1);
  CHECK(g[0].policy.around[0].kind == PolicyKind::kBaseline);
  CHECK(g[0].policy.json == R"({"type":"gaussian","sigma":0.2,"around":{"type":"baseline"}})");
  CHECK(g[1].policy.sigma == 0.1);
  CHECK(g[1].policy.around[0].kind == PolicyKind::kConstant);
  CHECK(g[1].policy.around[0].action == std::vector<double>{0.5, -1.0});
  // The author's key order is kept.
  CHECK(g[1].policy.json ==
        R"({"around":{"type":"constant","action":[0.5,-1.0]},"sigma":0.1,"type":"gaussian"})");
  CHECK(g[2].policy.kind == PolicyKind::kRandom);
  CHECK(g[2].policy.json == R"({"type":"random","around":{"type":"baseline"}})");
  CHECK(g[3].policy.kind == PolicyKind::kBoundedUniform);
  CHECK(g[3].policy.bound == std::vector<double>{0.25});
  CHECK(g[3].policy.json ==
        R"({"type":"bounded_uniform","bound":0.25,"around":{"type":"baseline"}})");
  CHECK(g[4].policy.bound == std::vector<double>{0.1, 2.0});
  CHECK(g[4].policy.json ==
        R"({"type":"bounded_uniform","bound":[0.1,2.0],"around":{"type":"baseline"}})");
  j["groups"][3]["policy"].erase("bound");
  CHECK(parse_scenario(j.dump()).groups[3].policy.bound == std::vector<double>{0.15});  // Formula 3

  const std::string text = scenario_to_json(s);
  const Scenario back = parse_scenario(text, "written.json");
  CHECK(back == s);
  CHECK(scenario_to_json(back) == text);

  Scenario other = back;
  other.groups[1].policy.around[0].action[0] = 0.25;  // equality looks into "around"
  CHECK_FALSE(other == s);
}

TEST_CASE("exploration policy values are validated with their JSON path") {
  Json j = minimal();
  j["groups"][0]["policy"] = {{"type", "gaussian"}, {"sigma", 0}};
  CHECK(error_for(j) == "test.json: groups[0].policy.sigma: expected a number in (0, 10], got 0");
  j["groups"][0]["policy"] = {{"type", "gaussian"}, {"sigma", "0.2x"}};
  CHECK(error_for(j) == "test.json: groups[0].policy.sigma: expected a number in (0, 10], got \"0.2x\"");
  j["groups"][0]["policy"] = {{"type", "bounded_uniform"}, {"bound", 0}};
  CHECK(error_for(j) == "test.json: groups[0].policy.bound: expected a number in (0, 2], got 0");
  j["groups"][0]["policy"] = {{"type", "bounded_uniform"}, {"bound", 2.5}};
  CHECK(error_for(j) == "test.json: groups[0].policy.bound: expected a number in (0, 2], got 2.5");
  j["groups"][0]["policy"] = {{"type", "bounded_uniform"}, {"bound", {0.1}}};
  CHECK(error_for(j) == "test.json: groups[0].policy.bound: expected a number in (0, 2] or an "
                        "array of 2 numbers in (0, 2] (one per fusion.dims entry), got [0.1] "
                        "(length 1)");
  j["groups"][0]["policy"] = {{"type", "bounded_uniform"}, {"bound", {0.1, -0.1}}};
  CHECK(error_for(j) ==
        "test.json: groups[0].policy.bound[1]: expected a number in (0, 2], got -0.1");
  j["groups"][0]["policy"] = {{"type", "random"}, {"sigma", 0.1}};
  CHECK(error_for(j) == "test.json: groups[0].policy.sigma: expected one of the known keys: "
                        "type, around, got unknown key \"sigma\"");
  j["groups"][0]["policy"] = {{"type", "gaussian"}, {"around", {{"type", "random"}}}};
  CHECK(error_for(j) == "test.json: groups[0].policy.around.type: expected a deterministic policy "
                        "type: \"constant\" or \"baseline\" (the action mu(s) the exploration is "
                        "around), got \"random\"");
  j["groups"][0]["policy"] = {{"type", "random"},
                              {"around", {{"type", "constant"}, {"action", {2, 0}}}}};
  CHECK(error_for(j) ==
        "test.json: groups[0].policy.around.action[0]: expected a number in [-1, 1], got 2");
  j["groups"][0]["policy"] = {{"type", "random"}, {"around", {{"type", "baselin"}}}};
  CHECK(error_for(j) == "test.json: groups[0].policy.around.type: expected a policy type: "
                        "\"constant\", \"baseline\", \"gaussian\", \"random\", "
                        "\"bounded_uniform\" or \"agent\" (did you mean \"baseline\"?), got \"baselin\"");
}

TEST_CASE("an agent policy names its file (and the agent's name in a run database), and round-trips") {
  Json j = minimal();
  j["groups"][0]["policy"] = {{"type", "agent"}, {"path", "runs/a.sqlite"}, {"name", "BCQ"}};
  const Scenario s = parse_scenario(j.dump(), "test.json");
  CHECK(s.groups[0].policy.kind == PolicyKind::kAgent);
  CHECK(s.groups[0].policy.path == "runs/a.sqlite");
  CHECK(s.groups[0].policy.agent_name == "BCQ");
  CHECK(parse_scenario(scenario_to_json(s), "again").groups == s.groups);
  j["groups"][0]["policy"] = {{"type", "agent"}};
  CHECK(error_for(j).find("test.json: groups[0].policy.path: expected the agent file (*.mtfa), or the run database") == 0);
  j["groups"][0]["policy"] = {{"type", "agent"}, {"path", ""}};
  CHECK(error_for(j).find("groups[0].policy.path: expected the agent file") != std::string::npos);
  j["groups"][0]["policy"] = {{"type", "agent"}, {"path", "a.sqlite"}, {"name", 3}};
  CHECK(error_for(j).find("groups[0].policy.name: expected the agent's name in the run database") != std::string::npos);
  // An agent is not a deterministic rule to explore around.
  j["groups"][0]["policy"] = {{"type", "gaussian"}, {"around", {{"type", "agent"}, {"path", "a.mtfa"}}}};
  CHECK(error_for(j).find("groups[0].policy.around.type: expected a deterministic policy type") != std::string::npos);
}

TEST_CASE("duplicates are rejected: group names, fusion dimensions and JSON keys") {
  Json j = minimal();
  j["groups"] = Json::array({{{"name", "a"}}, {{"name", "a"}}});
  CHECK(error_for(j) == "test.json: groups[1].name: expected a group name not used before (names "
                        "must be unique), got \"a\"");

  j = minimal();
  j["fusion"]["dims"].push_back({{"task", "play"}, {"term", "pow"}, {"range", {0, 1}}});
  CHECK(error_for(j) == "test.json: fusion.dims[2]: expected each (task, term) at most once in "
                        "fusion.dims, got a second \"play\" \"pow\"");

  const std::string text = R"({"days": 2, "groups": [{"name": "a", "share": 1, "share": 2}]})";
  CHECK(error_for_text(text) == "test.json: groups[0].share: expected each key once per object, got "
                           "\"share\" a second time");
}

TEST_CASE("the required blocks are reported when missing") {
  Json j = minimal();
  j.erase("groups");
  CHECK(error_for(j) == "test.json: groups: expected an array of at least 1 group {name, share, "
                        "policy}, got nothing (the key is required)");
  j = minimal();
  j["groups"] = Json::array();
  CHECK(error_for(j) ==
        "test.json: groups: expected an array of at least 1 group {name, share, policy}, got []");
  j = minimal();
  j["fusion"].erase("dims");
  CHECK(error_for(j) == "test.json: fusion.dims: expected an array of at least 1 dimension "
                        "{task, term, range}, got nothing (the key is required)");
}

TEST_CASE("fusion terms follow the form, and log_sum needs a positive beta") {
  Json j = minimal();
  j["fusion"]["form"] = "log_sum";
  CHECK(error_for(j) == "test.json: fusion.dims[0].term: expected \"alpha\" or \"beta\" "
                        "(fusion.form is \"log_sum\"), got \"pow\"");

  j["fusion"]["dims"] = {{{"task", "play"}, {"term", "alpha"}, {"range", {0, 2}}}};
  CHECK(error_for(j) == "test.json: fusion.fixed.play.bias: expected a beta > 0 for task "
                        "\"play\" (log_sum takes log(o + beta), and o can be 0), got 0 (the "
                        "default)");

  j["fusion"]["fixed"] = {{"play", {{"bias", 0.01}}}};
  const Scenario s = parse_scenario(j.dump());
  CHECK(s.fusion.form == FusionForm::kLogSum);
  CHECK(s.fusion.fixed_bias[0] == 0.01);

  j["fusion"]["dims"][0]["task"] = "plya";
  CHECK(error_for(j) == "test.json: fusion.dims[0].task: expected a task name (\"play\", "
                        "\"valid\", \"watch_time\", \"finish\", \"like\", \"share\", \"comment\" "
                        "or \"skip\"), did you mean \"play\"?, got \"plya\"");
}

TEST_CASE("a JSON syntax error is reported with its line and column") {
  const std::string text = "{\n  \"days\": 3\n  \"seed\": 4\n}\n";
  const std::string msg = error_for_text(text);
  // The column is where the offending token ("seed", columns 3 to 8) ends.
  CHECK(msg == "test.json: line 3, column 8: invalid JSON: syntax error while parsing object - "
               "unexpected string literal; expected '}'");
  CHECK(msg.find("expected '}'") != std::string::npos);
  CHECK(error_for_text("").rfind("test.json: line 1, column 1: invalid JSON: ", 0) == 0);
}

TEST_CASE("a missing scenario file is reported with its path") {
  try {
    load_scenario("/nonexistent/dir/scenario.json");
    FAIL("no error");
  } catch (const ScenarioError& e) {
    CHECK(std::string(e.what()).rfind("/nonexistent/dir/scenario.json: cannot read the scenario "
                                      "file (No such file or directory): check the path", 0) == 0);
  }
}

TEST_CASE("writing a scenario and parsing it back gives the same scenario") {
  Json j = Json::parse(R"({
    "name": "round-trip",
    "seed": 18446744073709551615,
    "days": 7,
    "population": {"size": 1234, "segments": [
      {"name": "young", "share": 0.3, "age_mix": [0.7, 0.2, 0.1, 0.0], "male_prob": 0.45,
       "sessions_per_day": 3.5, "activity_spread": 0.25, "preferred_hour": 22.5,
       "taste_long": -0.75, "clickbait_sensitivity": 1.5, "interaction": 0.7, "patience": -0.2,
       "interest_topics": 5},
      {"name": "old", "share": 0.7, "age_mix": [0.0, 0.1, 0.3, 0.6], "preferred_hour": 0}]},
    "catalogue": {"items": 5000, "topics": 12, "topic_graph_degree": 2, "duration_median_s": 60,
                  "duration_sigma": 1.1, "clickbait_share": 0.35},
    "retrieval": {"candidates": 100, "interest_bias": 0.55, "shown": 8},
    "mtl": {"tasks": {"like": {"noise": 0.9, "scale": 0.7, "offset": -0.3},
                      "skip": {"noise": 0.0}}},
    "fusion": {"form": "log_sum",
               "fixed": {"play": {"weight": 1.5, "bias": 0.1}, "valid": {"bias": 0.2},
                         "watch_time": {"bias": 0.3}, "finish": {"bias": 0.05},
                         "like": {"bias": 0.01}, "share": {"bias": 0.01},
                         "comment": {"bias": 0.01}, "skip": {"weight": -0.5, "bias": 0.1}},
               "dims": [{"task": "valid", "term": "alpha", "range": [0, 3]},
                        {"task": "valid", "term": "beta", "range": [0.01, 0.5]},
                        {"task": "like", "term": "alpha", "range": [-1, 1]}]},
    "groups": [{"name": "fixed", "share": 2,
                "policy": {"type": "constant", "action": [0.1, -1, 1]}},
               {"name": "prod", "share": 1}],
    "record": {"transitions": false, "user_days": true}
  })");
  // Every reward and user-model number moved off its default.
  const Json defaults = Json::parse(scenario_to_json(Scenario{}));
  for (const auto& [key, v] : defaults["reward"].items()) j["reward"][key] = v.get<double>() + 0.5;
  for (const auto& [key, v] : defaults["user_model"].items())
    j["user_model"][key] = v.get<double>() + 0.0625;
  REQUIRE(j["user_model"].size() == 38);

  const Scenario s = parse_scenario(j.dump(), "round-trip.json");
  CHECK(s.seed == 18446744073709551615ULL);
  CHECK(s.user_model.browse_seconds == UserDynamicsParams{}.browse_seconds + 0.0625);
  CHECK(s.reward.skip == RewardParams{}.skip + 0.5);

  const std::string text = scenario_to_json(s);
  const Scenario back = parse_scenario(text, "written.json");
  CHECK(back == s);
  CHECK(scenario_to_json(back) == text);  // the written form is a fixed point

  // The written JSON keeps the documented key order.
  const Json written = Json::parse(text);
  std::vector<std::string> keys;
  for (const auto& [key, v] : written.items()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"name", "seed", "days", "population", "catalogue",
                                         "retrieval", "mtl", "fusion", "reward", "user_model",
                                         "groups", "record", "limits"});

  SUBCASE("a change anywhere makes the scenarios differ") {
    Scenario other = back;
    other.user_model.fatigue_per_minute += 1;
    CHECK_FALSE(other == s);
    other = back;
    other.population.segments[1].interest_topics = 1;
    CHECK_FALSE(other == s);
  }
}

TEST_CASE("every shipped scenario file loads and round-trips") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(MTF_SOURCE_DIR) / "scenarios";
  int files = 0;
  if (fs::is_directory(dir)) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() != ".json") continue;
      ++files;
      CAPTURE(entry.path());
      const Scenario s = load_scenario(entry.path());
      CHECK(parse_scenario(scenario_to_json(s)) == s);
    }
  }
  MESSAGE(files << " scenario files checked");
}

namespace {

/// Every numeric leaf of `v` with its JSON path, as messages write it.
void numeric_paths(const Json& v, const std::string& path, std::vector<std::string>& out,
                   std::vector<Json::json_pointer>& ptrs, const Json::json_pointer& ptr) {
  if (v.is_object()) {
    for (const auto& [k, c] : v.items())
      numeric_paths(c, path.empty() ? k : path + "." + k, out, ptrs, ptr / k);
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i)
      numeric_paths(v[i], path + "[" + std::to_string(i) + "]", out, ptrs, ptr / i);
  } else if (v.is_number()) {
    out.push_back(path);
    ptrs.push_back(ptr);
  }
}

}  // namespace

TEST_CASE("every number of a scenario has a finite range: a huge value anywhere is rejected naming its path") {
  // The quickstart scenario as written back (every key present, policies of
  // each kind), then each number in turn set to +1e300 and to -1e300.
  Json j = Json::parse(scenario_to_json(load_scenario(std::string(MTF_SOURCE_DIR) + "/scenarios/quickstart.json")));
  j["groups"].push_back({{"name", "g"}, {"policy", {{"type", "gaussian"}, {"sigma", 0.2}}}});
  j["groups"].push_back({{"name", "b"}, {"policy", {{"type", "bounded_uniform"}, {"bound", 0.15}}}});
  std::vector<std::string> paths;
  std::vector<Json::json_pointer> ptrs;
  numeric_paths(j, "", paths, ptrs, Json::json_pointer{});
  REQUIRE(paths.size() > 150);
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (paths[i] == "seed") continue;  // any 64-bit integer (checked in its own test)
    for (const double huge : {1e300, -1e300}) {
      Json bad = j;
      bad[ptrs[i]] = huge;
      const std::string msg = error_for(bad);
      INFO(paths[i] << " = " << huge << ": " << msg);
      CHECK(msg.rfind("test.json: " + paths[i] + ": expected ", 0) == 0);
    }
  }
}

TEST_CASE("patience and the session caps are bounded, and out-of-range values name the range") {
  Json j = minimal();
  j["population"]["segments"] = Json::array({{{"patience", 1e6}}});
  CHECK(error_for(j) == "test.json: population.segments[0].patience: expected a number in [-10, 10], got 1000000.0");

  j = minimal();
  j["limits"] = {{"max_session_requests", 0}};
  CHECK(error_for(j) == "test.json: limits.max_session_requests: expected an integer in [1, 100000], got 0");

  j = minimal();
  j["limits"] = {{"max_session_hours", 0}};
  CHECK(error_for(j) == "test.json: limits.max_session_hours: expected a number in (0, 720], got 0");

  j = minimal();
  j["limits"] = {{"max_session_hours", 1000}};
  CHECK(error_for(j) == "test.json: limits.max_session_hours: expected a number in (0, 720], got 1000");

  j = minimal();
  j["limits"] = {{"max_session_request", 10}};
  CHECK(error_for(j) == "test.json: limits.max_session_request: expected a known key (did you mean "
                        "\"max_session_requests\"?), got unknown key \"max_session_request\"");

  j = minimal();
  j["user_model"] = {{"leave_bias", -1000}};
  CHECK(error_for(j) == "test.json: user_model.leave_bias: expected a number in [-100, 100], got -1000");

  j = minimal();
  j["population"]["segments"] = Json::array({{{"sessions_per_day", 1000}}});
  CHECK(error_for(j) ==
        "test.json: population.segments[0].sessions_per_day: expected a number in (0, 100], got 1000");
}

TEST_CASE("the limits block defaults to caps far above real sessions and round-trips") {
  const Scenario s = parse_scenario(minimal().dump());
  CHECK(s.limits.max_session_requests == 400);
  CHECK(s.limits.max_session_hours == 24);
  Json j = minimal();
  j["limits"] = {{"max_session_requests", 7}, {"max_session_hours", 0.5}};
  const Scenario t = parse_scenario(j.dump());
  CHECK(t.limits.max_session_requests == 7);
  CHECK(t.limits.max_session_hours == 0.5);
  CHECK(parse_scenario(scenario_to_json(t)) == t);
  CHECK_FALSE(t == s);
}
