// Flat bytes for what ranks send each other (the simulator's block exchange, a
// resumed experiment's checkpoint and data): trivially copyable values appended
// to a string as they lie in memory, read back in the same order by a
// ByteReader. Only for processes of the same build on the same kind of machine
// (an MPI job): no byte-order or version marks.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/transitions.h"

namespace mtf {

template <typename T>
void put(std::string& out, const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
void put_all(std::string& out, std::span<const T> v) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (!v.empty()) out.append(reinterpret_cast<const char*>(v.data()), v.size_bytes());
}
/// The count, then the values.
template <typename T>
void put_vec(std::string& out, const std::vector<T>& v) {
  put(out, static_cast<std::uint64_t>(v.size()));
  put_all<T>(out, std::span<const T>(v));
}
/// The length, then the characters.
inline void put_string(std::string& out, std::string_view s) {
  put(out, static_cast<std::uint64_t>(s.size()));
  out.append(s);
}

/// A flag, then the value when there is one.
template <typename T>
void put_optional(std::string& out, const std::optional<T>& v) {
  put(out, static_cast<std::uint8_t>(v ? 1 : 0));
  if (v) put(out, *v);
}

/// Reads what put() and friends wrote, in order. Bytes that end too early
/// throw std::runtime_error starting with `what` (where they came from).
struct ByteReader {
  std::string_view bytes;
  std::size_t pos = 0;
  const char* what = "bytes exchanged between MPI ranks";

  bool done() const { return pos == bytes.size(); }
  std::string_view take(std::size_t n) {
    if (bytes.size() - pos < n)
      throw std::runtime_error(std::string(what) + ": truncated (ranks running different mtfsim builds?)");
    const std::string_view v = bytes.substr(pos, n);
    pos += n;
    return v;
  }
  template <typename T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    std::memcpy(&v, take(sizeof v).data(), sizeof v);
    return v;
  }
  template <typename T>
  void get_vec(std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto n = get<std::uint64_t>();
    if (n > (bytes.size() - pos) / sizeof(T)) take(bytes.size() - pos + 1);  // throws: truncated
    v.resize(static_cast<std::size_t>(n));
    if (n) std::memcpy(v.data(), take(n * sizeof(T)).data(), n * sizeof(T));
  }
  template <typename T>
  std::optional<T> get_optional() {
    if (get<std::uint8_t>() == 0) return std::nullopt;
    return get<T>();
  }
  std::string get_string() {
    const auto n = get<std::uint64_t>();
    return std::string(take(n));
  }
};

/// Transition columns, every column and row as stored.
inline void put_columns(std::string& out, const TransitionColumns& c) {
  put(out, static_cast<std::int32_t>(c.state_dim));
  put(out, static_cast<std::int32_t>(c.action_dim));
  for (const auto* v : {&c.state, &c.action, &c.baseline, &c.lower, &c.upper, &c.next_state}) put_vec(out, *v);
  put_vec(out, c.rows);
}
/// What put_columns() wrote, into `c` (replacing what it held).
inline void get_columns(ByteReader& in, TransitionColumns& c) {
  c.state_dim = in.get<std::int32_t>();
  c.action_dim = in.get<std::int32_t>();
  for (auto* v : {&c.state, &c.action, &c.baseline, &c.lower, &c.upper, &c.next_state}) in.get_vec(*v);
  in.get_vec(c.rows);
}

}  // namespace mtf
