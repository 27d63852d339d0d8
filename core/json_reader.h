// The one JSON reader and validator of the testbed: scenarios (sim/scenario.cpp),
// experiment blocks (experiments/experiment_spec.cpp) and agent hyperparameters
// (agents/hyperparameters.cpp) all read their input through it. Every message
// has one form,
//   <origin>: <json path>: expected <what>, got <what was found>
// and an unknown key names the closest known one ("did you mean ...?").
//
// A Node is a value with its path and its Source (the origin's name and how to
// throw); an Obj is an object whose keys were checked; a Range is an allowed
// interval that also writes itself into messages. The Source picks the exception
// type, so each caller keeps its own (ScenarioError, ExperimentError,
// std::invalid_argument); the default is JsonInputError.
#pragma once

#include <cstddef>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json_error.h"

namespace mtf::json_reader {

/// The JSON type read: keeps the author's key order (messages, written blocks).
using Value = nlohmann::ordered_json;

/// Throws an exception carrying `message`; never returns.
using Raise = void (*)(const std::string& message);

/// A Raise that throws E(message).
template <class E>
[[noreturn]] void raise_as(const std::string& message) {
  throw E(message);
}

/// Where a document comes from: its name in messages (a file name; empty: the
/// path alone) and the exception type its errors throw.
struct Source {
  std::string name;
  Raise raise = &raise_as<JsonInputError>;

  /// Throws through `raise` with the message as is.
  [[noreturn]] void fail(const std::string& message) const;
  /// Throws `<name>: <path>: expected <expected>, got <got>`.
  [[noreturn]] void fail(const std::string& path, const std::string& expected, const std::string& got) const;
};

/// The one message form: `<origin>: <path>: expected <expected>, got <got>`; an
/// empty origin is left out, an empty path reads "(top level)".
std::string error_message(std::string_view origin, std::string_view path, std::string_view expected,
                          std::string_view got);

// --- Formatting

/// A JSON value as it appears in a message: compact, cut if long.
std::string show(const Value& v);
std::string show(const nlohmann::json& v);
/// A bound in a message: 1 rather than 1.0, 0.5 as 0.5.
std::string show_number(double x);
/// A string as a JSON string literal.
std::string in_quotes(std::string_view s);
/// "a", "b" or "c".
std::string join_quoted(const std::vector<std::string_view>& names);

/// Levenshtein distance (small strings: keys).
std::size_t edit_distance(std::string_view a, std::string_view b);
/// The closest known name within edit distance 2, or empty.
std::string_view closest(std::string_view word, const std::vector<std::string_view>& known);

/// The message parts for a key not in `known`: {expected, got}, with "did you
/// mean" when a known key is close and the list of known keys otherwise.
std::pair<std::string, std::string> unknown_key(std::string_view key, const std::vector<std::string_view>& known);

std::string child_path(const std::string& path, std::string_view key);
std::string index_path(const std::string& path, std::size_t i);

// --- Ranges

/// An allowed interval of a number; `integer` also requires an integral value
/// (that fits the destination type).
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  bool integer = false;

  bool contains(double x) const;
  /// "a number in [0, 1]", "an integer >= 1", "a number > 0", ...
  std::string describe() const;
};

Range any_number();
Range at_least(double lo);
Range above(double lo);
Range closed(double lo, double hi);
Range half_open(double lo, double hi);
Range probability();
Range int_range(double lo, double hi = std::numeric_limits<double>::infinity());

// --- Reading with paths

/// A JSON value and where it is; every error names origin and path.
struct Node {
  const Value* value = nullptr;  // null: the key is missing
  std::string path;
  const Source* origin = nullptr;

  bool missing() const { return value == nullptr; }

  [[noreturn]] void fail(const std::string& expected, const std::string& got) const;
  /// Fails showing the value found (or "nothing" when the key is missing).
  [[noreturn]] void fail(const std::string& expected) const;

  Node at(std::string_view key) const;
  Node at(std::size_t i) const;

  double number(const Range& r) const;
  int integer(const Range& r) const;
  bool boolean() const;
  std::string string(const std::string& what = "a non-empty string") const;
  /// An array of at least `min_size` elements; returns its size.
  std::size_t array(const std::string& what, std::size_t min_size) const;
};

/// A JSON object whose keys were checked against the known ones.
class Obj {
 public:
  Obj(const Node& n, std::vector<std::string_view> known, const std::string& what = "an object");

  const Node& node() const { return node_; }
  Node at(std::string_view key) const { return node_.at(key); }
  bool has(std::string_view key) const { return !at(key).missing(); }

  // Each read leaves `out` (the struct default) alone when the key is missing.
  void read(std::string_view key, double& out, const Range& r) const;
  void read(std::string_view key, int& out, const Range& r) const;
  void read(std::string_view key, bool& out, const Range&) const;
  void read(std::string_view key, std::string& out) const;

 private:
  Node node_;
};

/// A sub-block: present → checked object; missing → nullopt (all defaults).
std::optional<Obj> block(const Obj& parent, std::string_view key, std::vector<std::string_view> known);

/// The value found at `key` for a cross-field message: the JSON text, or the
/// default that was used when the key is missing.
std::string found(const Obj& o, std::string_view key, double value);

/// Parses JSON text. A duplicated key is an error (not a silent overwrite), and
/// a syntax error keeps nlohmann's line, column and reason:
///   <origin>: line 3, column 14: invalid JSON: <reason>
Value parse(const std::string& text, const Source& source);

}  // namespace mtf::json_reader
