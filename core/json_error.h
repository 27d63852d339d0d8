// The error of invalid JSON input, thrown by the reader (core/json_reader.h) and
// the base of the scenario's error; kept apart so that a header that names it
// does not pull in nlohmann/json.
#pragma once

#include <stdexcept>

namespace mtf {

/// Invalid JSON input: what() names the origin, the JSON path, what was expected
/// and what was found.
class JsonInputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mtf
