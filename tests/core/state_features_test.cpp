// The state-feature table of core/state_features.h is the one definition: the
// README's table must be the same table, row for row.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/state_features.h"

using namespace mtf;

namespace {
std::string trim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  s.erase(0, b);
  return s;
}
std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line.substr(1));
  std::string c;
  while (std::getline(in, c, '|')) out.push_back(trim(c));
  return out;
}
std::string range_text(float lo, float hi) {
  std::ostringstream o;  // not a chain of operator+: GCC 12 warns falsely on it (-Wrestrict)
  o << '[' << static_cast<int>(lo) << ", " << static_cast<int>(hi) << ']';
  return o.str();
}
}  // namespace

TEST_CASE("the README's table of state features is the table of core/state_features.h") {
  std::ifstream readme(std::string(MTF_SOURCE_DIR) + "/README.md");
  REQUIRE(readme.good());
  std::string line;
  while (std::getline(readme, line) && line.rfind("| # | feature | meaning and scale | range |", 0) != 0) {
  }
  REQUIRE_FALSE(readme.eof());
  std::getline(readme, line);  // the |---| row
  int i = 0;
  while (std::getline(readme, line) && line.rfind("|", 0) == 0) {
    REQUIRE(i < kStateDim);
    const StateFeature& f = kStateFeatures[static_cast<std::size_t>(i)];
    const auto c = cells(line);
    REQUIRE(c.size() == 4);
    CHECK(c[0] == std::to_string(i));
    CHECK(c[1] == f.name);
    CHECK(c[2] == f.meaning);
    CHECK(c[3] == range_text(f.lo, f.hi));
    ++i;
  }
  CHECK(i == kStateDim);
}

TEST_CASE("every feature has a non-empty range and is found by its name") {
  for (int i = 0; i < kStateDim; ++i) {
    const StateFeature& f = kStateFeatures[static_cast<std::size_t>(i)];
    CHECK(f.lo < f.hi);
    CHECK(state_feature_index(f.name) == i);
  }
  CHECK(state_feature_index("no such feature") == -1);
  CHECK(kStateFeatures[kBiasFeature].name == "bias");
}
