// Hyperparameter merging and validation.
#include "agents/hyperparameters.h"

#include <sstream>
#include <stdexcept>

namespace mtf::agents {
namespace {
const char* type_word(const nlohmann::json& v) {
  if (v.is_boolean()) return "true or false";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "a list of integers";
  return "a value";
}
bool same_kind(const nlohmann::json& def, const nlohmann::json& v) {
  if (def.is_boolean()) return v.is_boolean();
  if (def.is_number_integer()) return v.is_number_integer();
  if (def.is_number()) return v.is_number();
  if (def.is_string()) return v.is_string();
  if (def.is_array()) return v.is_array();
  return false;
}
}  // namespace

Hyperparameters::Hyperparameters(std::string agent, nlohmann::json defaults, const nlohmann::json& overrides)
    : agent_(std::move(agent)), values_(std::move(defaults)) {
  if (overrides.is_null()) return;
  if (!overrides.is_object())
    throw std::invalid_argument(agent_ + ": expected an object of hyperparameters, got " + overrides.dump());
  for (auto it = overrides.begin(); it != overrides.end(); ++it) {
    if (!values_.contains(it.key())) {
      std::ostringstream known;
      for (auto d = values_.begin(); d != values_.end(); ++d) known << (d == values_.begin() ? "" : ", ") << d.key();
      throw std::invalid_argument(agent_ + "." + it.key() + ": unknown hyperparameter; known: " + known.str());
    }
    const nlohmann::json& def = values_[it.key()];
    if (!same_kind(def, it.value()))
      fail(it.key(), std::string(type_word(def)) + ", got " + it.value().dump());
    values_[it.key()] = it.value();
  }
}

void Hyperparameters::fail(const std::string& key, const std::string& expected) const {
  throw std::invalid_argument(agent_ + "." + key + ": expected " + expected);
}

float Hyperparameters::number(const std::string& key, double lo, double hi, bool lo_open) const {
  const double v = values_.at(key).get<double>();
  if (!(lo_open ? v > lo : v >= lo) || !(v <= hi)) {
    std::ostringstream e;
    e << "a number in " << (lo_open ? "(" : "[") << lo << ", " << hi << "], got " << values_.at(key).dump();
    fail(key, e.str());
  }
  return static_cast<float>(v);
}

int Hyperparameters::integer(const std::string& key, int lo, int hi) const {
  const auto v = values_.at(key).get<long long>();
  if (v < lo || v > hi)
    fail(key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
  return static_cast<int>(v);
}

bool Hyperparameters::flag(const std::string& key) const { return values_.at(key).get<bool>(); }

std::string Hyperparameters::choice(const std::string& key, std::initializer_list<const char*> choices) const {
  const std::string v = values_.at(key).get<std::string>();
  std::string list;
  for (const char* c : choices) {
    if (v == c) return v;
    list += (list.empty() ? "\"" : ", \"") + std::string(c) + "\"";
  }
  fail(key, "one of " + list + ", got \"" + v + "\"");
}

std::vector<int> Hyperparameters::widths(const std::string& key) const {
  const nlohmann::json& v = values_.at(key);
  std::vector<int> out;
  for (const auto& e : v) {
    if (!e.is_number_integer() || e.get<long long>() <= 0 || e.get<long long>() > 65536)
      fail(key, "a non-empty list of positive integers, got " + v.dump());
    out.push_back(e.get<int>());
  }
  if (out.empty()) fail(key, "a non-empty list of positive integers, got " + v.dump());
  return out;
}

}  // namespace mtf::agents
