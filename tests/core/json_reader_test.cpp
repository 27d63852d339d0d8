// The shared JSON reader (core/json_reader.h): the one message form, "did you
// mean" for unknown keys, ranges, duplicate keys and syntax errors, and the
// caller's choice of exception type.
#include <doctest/doctest.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "core/json_reader.h"

using namespace mtf;
using namespace mtf::json_reader;

namespace {

/// The message of the JsonInputError `f` throws, or "" when it throws nothing.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const JsonInputError& e) {
    return e.what();
  }
  return "";
}

struct OtherError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

}  // namespace

TEST_CASE("a message names the origin, the path, what was expected and what was found") {
  CHECK(error_message("a.json", "x.y", "a number", "\"s\"") == "a.json: x.y: expected a number, got \"s\"");
  CHECK(error_message("", "td3.gamma", "a number", "1.5") == "td3.gamma: expected a number, got 1.5");
  CHECK(error_message("a.json", "", "an object", "[]") == "a.json: (top level): expected an object, got []");
}

TEST_CASE("ranges describe themselves as a person would write them") {
  CHECK(closed(0, 1).describe() == "a number in [0, 1]");
  CHECK(Range{0, 2, true, false}.describe() == "a number in (0, 2]");
  CHECK(half_open(0, 24).describe() == "a number in [0, 24)");
  CHECK(above(0).describe() == "a number > 0");
  CHECK(at_least(0.5).describe() == "a number >= 0.5");
  CHECK(int_range(1).describe() == "an integer >= 1");
  CHECK(int_range(1, 512).describe() == "an integer in [1, 512]");
  CHECK(any_number().describe() == "a number");
  CHECK(closed(0, 1).contains(1));
  CHECK_FALSE(half_open(0, 24).contains(24));
  CHECK_FALSE(int_range(1).contains(1.5));
  CHECK_FALSE(any_number().contains(std::numeric_limits<double>::infinity()));
}

TEST_CASE("values are read with their path and rejected with what was found") {
  const Source src{"t.json"};
  const Value doc = parse(R"({"a": {"n": 1.5, "i": 3, "s": "", "b": 1, "list": [1, 2]}})", src);
  const Node root{&doc, "", &src};
  const Node a = root.at("a");
  CHECK(a.at("n").number(closed(0, 2)) == 1.5);
  CHECK(a.at("i").integer(int_range(1, 5)) == 3);
  CHECK(a.at("list").array("a list", 2) == 2);
  CHECK(a.at("list").at(std::size_t{1}).path == "a.list[1]");
  CHECK(error_of([&] { a.at("n").number(closed(0, 1)); }) ==
        "t.json: a.n: expected a number in [0, 1], got 1.5");
  CHECK(error_of([&] { a.at("n").integer(any_number()); }) == "t.json: a.n: expected an integer, got 1.5");
  CHECK(error_of([&] { a.at("s").string(); }) == "t.json: a.s: expected a non-empty string, got \"\"");
  CHECK(error_of([&] { a.at("b").boolean(); }) == "t.json: a.b: expected true or false, got 1");
  CHECK(error_of([&] { a.at("gone").array("a list", 1); }) ==
        "t.json: a.gone: expected a list, got nothing (the key is required)");
  CHECK(error_of([&] { a.at("i").integer(int_range(0, 1e12)); }).empty());
  CHECK(error_of([&] { root.at("a").at("list").number(any_number()); }) == "t.json: a.list: expected a number, got [1,2]");
}

TEST_CASE("an unknown key names the closest known key, or all of them when none is close") {
  const Source src{"t.json"};
  const Value doc = parse(R"({"sigam": 1})", src);
  const Node root{&doc, "", &src};
  CHECK(error_of([&] { Obj(root, {"sigma", "around"}); }) ==
        "t.json: sigam: expected a known key (did you mean \"sigma\"?), got unknown key \"sigam\"");
  CHECK(error_of([&] { Obj(root, {"alpha", "beta"}); }) ==
        "t.json: sigam: expected one of the known keys: alpha, beta, got unknown key \"sigam\"");
  CHECK(error_of([&] { Obj(root.at("sigam"), {}, "an object (a block)"); }) ==
        "t.json: sigam: expected an object (a block), got 1");
}

TEST_CASE("checked objects leave missing keys at their defaults and read present ones") {
  const Source src{"t.json"};
  const Value doc = parse(R"({"x": 2, "flag": true, "name": "n", "sub": {"k": 1}})", src);
  const Obj o(Node{&doc, "", &src}, {"x", "y", "flag", "name", "sub", "none"});
  double x = 0, y = 7;
  bool flag = false;
  std::string name = "default";
  o.read("x", x, any_number());
  o.read("y", y, any_number());
  o.read("flag", flag, {});
  o.read("name", name);
  CHECK(x == 2);
  CHECK(y == 7);
  CHECK(flag);
  CHECK(name == "n");
  CHECK(block(o, "none", {}) == std::nullopt);
  CHECK(block(o, "sub", {"k"})->at("k").integer(any_number()) == 1);
  CHECK(found(o, "y", 7) == "7 (the default)");
  CHECK(found(o, "x", 0) == "2");
}

TEST_CASE("a duplicated key and a syntax error are reported with their place") {
  const Source src{"t.json"};
  CHECK(error_of([&] { parse(R"({"a": [{"b": 1, "b": 2}]})", src); }) ==
        "t.json: a[0].b: expected each key once per object, got \"b\" a second time");
  const std::string syntax = error_of([&] { parse("{\"a\": }", src); });
  CHECK(syntax.rfind("t.json: line 1, column 7: invalid JSON: ", 0) == 0);
  // A number too large for a double used to escape as nlohmann's out_of_range
  // (found by fuzzing the scenario parser, tests/fuzz/).
  CHECK(error_of([&] { parse(R"({"a": 201e308})", src); }) ==
        "t.json: invalid JSON: number overflow parsing '201e308' (beyond the range of a double)");
  CHECK_THROWS_AS(parse("[-1e999]", Source{"t.json", &raise_as<OtherError>}), OtherError);
}

TEST_CASE("the source chooses the exception type") {
  const Source src{"", &raise_as<OtherError>};
  const Value doc = Value::parse(R"({"gamma": 1.5})");
  const Node root{&doc, "td3", &src};
  CHECK_THROWS_WITH_AS(root.at("gamma").number(closed(0, 1)), "td3.gamma: expected a number in [0, 1], got 1.5",
                       OtherError);
  CHECK_THROWS_AS(Source{"x"}.fail("boom"), JsonInputError);
}

TEST_CASE("long values are cut in messages and numbers are shown as written") {
  CHECK(show(Value(std::string(200, 'x'))).size() == 80);
  CHECK(show(nlohmann::json{1, 2}) == "[1,2]");
  CHECK(show_number(1.0) == "1");
  CHECK(show_number(0.25) == "0.25");
  CHECK(show_number(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(join_quoted({"a", "b", "c"}) == "\"a\", \"b\" or \"c\"");
  CHECK(closest("pley", {"play", "valid"}) == "play");
  CHECK(closest("zzzzz", {"play", "valid"}).empty());
}
