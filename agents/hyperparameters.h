// Hyperparameters of an agent: the paper's defaults, overridden from a
// scenario's agent block, with every key and type checked by the shared JSON
// reader (core/json_reader.h).
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mtf::agents {

class Hyperparameters {
 public:
  /// Merges `overrides` into `defaults`. Throws std::invalid_argument for a key
  /// not in `defaults` (naming the closest known one) or a value whose JSON type
  /// differs from the default's (an integer default needs an integer). Messages
  /// have the shared form "<agent>.<key>: expected ..., got ..." (core/json_reader.h).
  Hyperparameters(std::string agent, nlohmann::json defaults, const nlohmann::json& overrides);

  /// A number in [lo, hi] (or (lo, hi] with lo_open).
  float number(const std::string& key, double lo, double hi, bool lo_open = false) const;
  int integer(const std::string& key, int lo, int hi) const;
  bool flag(const std::string& key) const;
  /// A string among `choices`.
  std::string choice(const std::string& key, std::initializer_list<const char*> choices) const;
  /// A non-empty list of positive integers (layer widths).
  std::vector<int> widths(const std::string& key) const;

  const nlohmann::json& resolved() const { return values_; }
  const std::string& agent() const { return agent_; }

 private:
  [[noreturn]] void fail(const std::string& key, const std::string& expected) const;
  std::string agent_;
  nlohmann::json values_;
};

}  // namespace mtf::agents
