// Hyperparameter merging and validation, through the shared JSON reader
// (core/json_reader.h): messages read `<agent>.<key>: expected ..., got ...`, an
// unknown key names the closest known one, and errors are std::invalid_argument.
#include "agents/hyperparameters.h"

#include <stdexcept>

#include "core/json_reader.h"

namespace mtf::agents {
namespace {

namespace jr = json_reader;

/// Errors of hyperparameters are std::invalid_argument (callers catch that); no
/// origin: the path starts with the agent's name.
const jr::Source& source() {
  static const jr::Source s{"", &jr::raise_as<std::invalid_argument>};
  return s;
}

const char* type_word(const nlohmann::json& v) {
  if (v.is_boolean()) return "true or false";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "a list of integers";
  return "a value";
}
bool same_kind(const nlohmann::json& def, const jr::Value& v) {
  if (def.is_boolean()) return v.is_boolean();
  if (def.is_number_integer()) return v.is_number_integer();
  if (def.is_number()) return v.is_number();
  if (def.is_string()) return v.is_string();
  if (def.is_array()) return v.is_array();
  return false;
}

/// Runs `read` on the node of `key` (a copy of the resolved value, with its path).
template <class F>
auto with_node(const std::string& agent, const nlohmann::json& values, const std::string& key, F&& read) {
  const jr::Value v(values.at(key));
  return read(jr::Node{&v, agent + "." + key, &source()});
}

}  // namespace

Hyperparameters::Hyperparameters(std::string agent, nlohmann::json defaults, const nlohmann::json& overrides)
    : agent_(std::move(agent)), values_(std::move(defaults)) {
  if (overrides.is_null()) return;
  const jr::Value doc(overrides);
  const jr::Node root{&doc, agent_, &source()};
  std::vector<std::string_view> known;
  for (auto d = values_.begin(); d != values_.end(); ++d) known.push_back(d.key());
  const jr::Obj o(root, known, "an object of hyperparameters");
  for (auto it = overrides.begin(); it != overrides.end(); ++it) {
    const nlohmann::json& def = values_[it.key()];
    if (!same_kind(def, doc.at(it.key()))) o.at(it.key()).fail(type_word(def));
    values_[it.key()] = it.value();
  }
}

void Hyperparameters::fail(const std::string& key, const std::string& expected) const {
  const jr::Value v(values_.at(key));
  jr::Node{&v, agent_ + "." + key, &source()}.fail(expected);
}

float Hyperparameters::number(const std::string& key, double lo, double hi, bool lo_open) const {
  const jr::Range r{lo, hi, lo_open, false};
  return static_cast<float>(with_node(agent_, values_, key, [&](const jr::Node& n) { return n.number(r); }));
}

int Hyperparameters::integer(const std::string& key, int lo, int hi) const {
  return with_node(agent_, values_, key, [&](const jr::Node& n) { return n.integer(jr::int_range(lo, hi)); });
}

bool Hyperparameters::flag(const std::string& key) const { return values_.at(key).get<bool>(); }

std::string Hyperparameters::choice(const std::string& key, std::initializer_list<const char*> choices) const {
  const std::string v = values_.at(key).get<std::string>();
  std::string list;
  for (const char* c : choices) {
    if (v == c) return v;
    list += (list.empty() ? "\"" : ", \"") + std::string(c) + "\"";
  }
  fail(key, "one of " + list);
}

std::vector<int> Hyperparameters::widths(const std::string& key) const {
  const nlohmann::json& v = values_.at(key);
  std::vector<int> out;
  for (const auto& e : v) {
    if (!e.is_number_integer() || e.get<long long>() <= 0 || e.get<long long>() > 65536)
      fail(key, "a non-empty list of positive integers");
    out.push_back(e.get<int>());
  }
  if (out.empty()) fail(key, "a non-empty list of positive integers");
  return out;
}

}  // namespace mtf::agents
