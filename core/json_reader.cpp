// The JSON reader: formatting, ranges, nodes and checked objects, and parsing
// with duplicate-key and syntax errors in the shared message form (see
// core/json_reader.h).
#include "core/json_reader.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <set>

namespace mtf::json_reader {

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

std::string error_message(std::string_view origin, std::string_view path, std::string_view expected,
                          std::string_view got) {
  std::string m;
  if (!origin.empty()) m.append(origin).append(": ");
  m.append(path.empty() ? std::string_view("(top level)") : path);
  m.append(": expected ").append(expected).append(", got ").append(got);
  return m;
}

void Source::fail(const std::string& message) const {
  raise(message);
  throw JsonInputError(message);  // a Raise that returned: still do not return
}

void Source::fail(const std::string& path, const std::string& expected, const std::string& got) const {
  fail(error_message(name, path, expected, got));
}

// ---------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------

namespace {
template <class J>
std::string show_any(const J& v) {
  std::string s = v.dump();
  constexpr std::size_t kMax = 80;
  if (s.size() > kMax) s = s.substr(0, kMax - 3) + "...";
  return s;
}
}  // namespace

std::string show(const Value& v) { return show_any(v); }
std::string show(const nlohmann::json& v) { return show_any(v); }

std::string show_number(double x) {
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == std::floor(x) && std::fabs(x) < 1e15) {
    return std::to_string(static_cast<long long>(x));
  }
  return Value(x).dump();
}

std::string in_quotes(std::string_view s) { return Value(std::string(s)).dump(); }

std::string join_quoted(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += i + 1 == names.size() ? " or " : ", ";
    out += in_quotes(names[i]);
  }
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string_view closest(std::string_view word, const std::vector<std::string_view>& known) {
  std::string_view best;
  std::size_t best_d = 3;
  for (std::string_view k : known) {
    const std::size_t d = edit_distance(word, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

std::pair<std::string, std::string> unknown_key(std::string_view key, const std::vector<std::string_view>& known) {
  const std::string got = "unknown key " + in_quotes(key);
  const std::string_view near = closest(key, known);
  if (!near.empty()) return {"a known key (did you mean " + in_quotes(near) + "?)", got};
  std::string list;
  for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
  return {"one of the known keys: " + list, got};
}

std::string child_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string index_path(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// ---------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------

bool Range::contains(double x) const {
  if (!std::isfinite(x)) return false;
  if (lo_open ? !(x > lo) : !(x >= lo)) return false;
  if (hi_open ? !(x < hi) : !(x <= hi)) return false;
  return !integer || x == std::floor(x);
}

std::string Range::describe() const {
  std::string what = integer ? "an integer" : "a number";
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi) {
    what += std::string(" in ") + (lo_open ? "(" : "[") + show_number(lo) + ", " + show_number(hi) +
            (hi_open ? ")" : "]");
  } else if (has_lo) {
    what += std::string(lo_open ? " > " : " >= ") + show_number(lo);
  } else if (has_hi) {
    what += std::string(hi_open ? " < " : " <= ") + show_number(hi);
  }
  return what;
}

Range any_number() { return {}; }
Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity()}; }
Range above(double lo) { return {lo, std::numeric_limits<double>::infinity(), true}; }
Range closed(double lo, double hi) { return {lo, hi}; }
Range half_open(double lo, double hi) { return {lo, hi, false, true}; }
Range probability() { return closed(0, 1); }
Range int_range(double lo, double hi) { return {lo, hi, false, false, true}; }

// ---------------------------------------------------------------------------
// Nodes and objects
// ---------------------------------------------------------------------------

void Node::fail(const std::string& expected, const std::string& got) const {
  origin->fail(path, expected, got);
}

void Node::fail(const std::string& expected) const {
  fail(expected, value ? show(*value) : std::string("nothing (the key is required)"));
}

Node Node::at(std::string_view key) const {
  auto it = value->find(std::string(key));
  return {it == value->end() ? nullptr : &*it, child_path(path, key), origin};
}

Node Node::at(std::size_t i) const { return {&(*value)[i], index_path(path, i), origin}; }

double Node::number(const Range& r) const {
  if (!value->is_number() || !r.contains(value->get<double>())) fail(r.describe());
  return value->get<double>();
}

int Node::integer(const Range& r) const {
  Range ri = r;
  ri.integer = true;
  const double x = number(ri);
  if (x < INT_MIN || x > INT_MAX) {
    ri.lo = std::max(ri.lo, static_cast<double>(INT_MIN));
    ri.hi = std::min(ri.hi, static_cast<double>(INT_MAX));
    fail(ri.describe());
  }
  return static_cast<int>(x);
}

bool Node::boolean() const {
  if (!value->is_boolean()) fail("true or false");
  return value->get<bool>();
}

std::string Node::string(const std::string& what) const {
  if (!value || !value->is_string() || value->get_ref<const std::string&>().empty()) fail(what);
  return value->get<std::string>();
}

std::size_t Node::array(const std::string& what, std::size_t min_size) const {
  if (!value || !value->is_array() || value->size() < min_size) fail(what);
  return value->size();
}

Obj::Obj(const Node& n, std::vector<std::string_view> known, const std::string& what) : node_(n) {
  if (!n.value || !n.value->is_object()) n.fail(what);
  for (const auto& [key, v] : n.value->items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    const Node bad{&v, child_path(n.path, key), n.origin};
    const auto [expected, got] = unknown_key(key, known);
    bad.fail(expected, got);
  }
}

void Obj::read(std::string_view key, double& out, const Range& r) const {
  if (const Node n = at(key); !n.missing()) out = n.number(r);
}
void Obj::read(std::string_view key, int& out, const Range& r) const {
  if (const Node n = at(key); !n.missing()) out = n.integer(r);
}
void Obj::read(std::string_view key, bool& out, const Range&) const {
  if (const Node n = at(key); !n.missing()) out = n.boolean();
}
void Obj::read(std::string_view key, std::string& out) const {
  if (const Node n = at(key); !n.missing()) out = n.string();
}

std::optional<Obj> block(const Obj& parent, std::string_view key, std::vector<std::string_view> known) {
  const Node n = parent.at(key);
  if (n.missing()) return std::nullopt;
  return Obj(n, std::move(known));
}

std::string found(const Obj& o, std::string_view key, double value) {
  const Node n = o.at(key);
  return n.missing() ? show_number(value) + " (the default)" : show(*n.value);
}

// ---------------------------------------------------------------------------
// Parsing: duplicate keys are an error, not a silent overwrite
// ---------------------------------------------------------------------------

namespace {

/// Tracks where the parser is, to name the path of a duplicated key.
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(const Source& source) : source_(source) {}

  bool operator()(int, Value::parse_event_t event, Value& parsed) {
    using E = Value::parse_event_t;
    switch (event) {
      case E::object_start:
        frames_.push_back(Frame{false, 0, {}, {}});
        break;
      case E::array_start:
        frames_.push_back(Frame{true, 0, {}, {}});
        break;
      case E::key: {
        Frame& f = frames_.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) {
          source_.fail(source_.name + ": " + path() + ": expected each key once per object, got " +
                       in_quotes(f.key) + " a second time");
        }
        break;
      }
      case E::object_end:
      case E::array_end:
        frames_.pop_back();
        element_done();
        break;
      case E::value:
        element_done();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool is_array;
    std::size_t index = 0;
    std::string key;
    std::set<std::string> keys;
  };
  void element_done() {
    if (!frames_.empty() && frames_.back().is_array) ++frames_.back().index;
  }
  std::string path() const {
    std::string p;
    for (const Frame& f : frames_) p = f.is_array ? index_path(p, f.index) : child_path(p, f.key);
    return p;
  }

  const Source& source_;
  std::vector<Frame> frames_;
};

}  // namespace

Value parse(const std::string& text, const Source& source) {
  try {
    return Value::parse(text, DuplicateKeyCheck(source));
  } catch (const Value::parse_error& e) {
    // nlohmann's text: "[json.exception.parse_error.101] parse error at line 3,
    // column 14: syntax error while parsing ..."; keep the position and the reason.
    const std::string what = e.what();
    const auto at = what.find(" at line ");
    const auto reason = what.find(": ", at == std::string::npos ? 0 : at);
    if (at != std::string::npos && reason != std::string::npos) {
      source.fail(source.name + ": " + what.substr(at + 4, reason - at - 4) + ": invalid JSON: " +
                  what.substr(reason + 2));
    }
    source.fail(source.name + ": invalid JSON: " + what);
  } catch (const Value::out_of_range& e) {
    // A number beyond a double's range ("1e400"): nlohmann's text names the
    // number, not its place; keep that.
    const std::string what = e.what();
    const auto number = what.find("number overflow");
    source.fail(source.name + ": invalid JSON: " +
                (number != std::string::npos ? what.substr(number) + " (beyond the range of a double)" : what));
  }
}

}  // namespace mtf::json_reader
