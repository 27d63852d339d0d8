// Column files (core/column_file.h): written in chunks, mapped back with the
// same values; unfinished, foreign or damaged directories are refused by name.
#include "core/column_file.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace mtf;
namespace fs = std::filesystem;

namespace {

/// Columns of `n` rows (state 2, action 1) over sessions of three requests:
/// s' follows within a session, a session's end keeps its own.
TransitionColumns sessions(int n, float offset) {
  TransitionColumns c;
  c.state_dim = 2;
  c.action_dim = 1;
  for (int i = 0; i < n; ++i) {
    TransitionColumns::Row r;
    r.user = i / 3;
    r.step = i % 3;
    r.done = i % 3 == 2;
    r.reward = 0.5f * static_cast<float>(i);
    r.has_baseline = i % 2 == 0;
    const bool bounded = i % 4 != 1;
    if (i % 5 == 0) r.log_density = -1.25 * i;
    r.counts.plays = i;
    const float s[2] = {offset + static_cast<float>(i), 1.0f};
    const float s_next[2] = {offset + static_cast<float>(r.done ? 1000 + i : i + 1), 1.0f};
    const float a = 0.01f * static_cast<float>(i), b = -a, lo = a - 0.1f, hi = a + 0.1f;
    c.push(r, s, {&a, 1}, s_next, {&b, 1}, bounded ? std::span<const float>(&lo, 1) : std::span<const float>(),
           bounded ? std::span<const float>(&hi, 1) : std::span<const float>());
  }
  return c;
}

/// A fresh directory path under the temporary directory.
fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("mtf_column_file_test_" + name);
  fs::remove_all(dir);
  return dir;
}

void write(const fs::path& dir, const std::vector<TransitionColumns>& chunks) {
  ColumnFileWriter w(dir, 2, 1);
  for (const TransitionColumns& c : chunks) w.append(c);
  w.finish();
}

}  // namespace

TEST_CASE("column files written in chunks map back to the appended columns' values") {
  const TransitionColumns a = sessions(10, 0), b = sessions(7, 100), empty = sessions(0, 0);
  TransitionColumns all = a;
  all.append(b);
  const fs::path dir = scratch("roundtrip");
  write(dir, {a, empty, b});
  const MappedColumns m(dir);
  const TransitionColumnsView v = m.view();
  REQUIRE(v.size() == all.size());
  CHECK(v.state_dim == 2);
  CHECK(v.action_dim == 1);
  CHECK(v.inconsistency().empty());
  CHECK(v.next_state_slots() == all.next_state_slots());
  for (std::size_t i = 0; i < all.size(); ++i) {
    CAPTURE(i);
    const TransitionColumns::Row &x = v.rows[i], &y = all.rows[i];
    CHECK(x.user == y.user);
    CHECK(x.step == y.step);
    CHECK(x.done == y.done);
    CHECK(x.reward == y.reward);
    CHECK(x.has_baseline == y.has_baseline);
    CHECK(x.has_bounds() == y.has_bounds());
    CHECK(x.has_log_density() == y.has_log_density());
    if (y.has_log_density()) CHECK(x.log_density == y.log_density);
    CHECK(std::vector<float>(v.lower_of(i).begin(), v.lower_of(i).end()) ==
          std::vector<float>(all.lower_of(i).begin(), all.lower_of(i).end()));
    CHECK(std::vector<float>(v.upper_of(i).begin(), v.upper_of(i).end()) ==
          std::vector<float>(all.upper_of(i).begin(), all.upper_of(i).end()));
    CHECK(x.counts.plays == y.counts.plays);
    CHECK(std::vector<float>(v.next_state_of(i).begin(), v.next_state_of(i).end()) ==
          std::vector<float>(all.next_state_of(i).begin(), all.next_state_of(i).end()));
  }
  CHECK(std::vector<float>(v.state.begin(), v.state.end()) == all.state);
  CHECK(std::vector<float>(v.action.begin(), v.action.end()) == all.action);
  CHECK(std::vector<float>(v.baseline.begin(), v.baseline.end()) == all.baseline);
  CHECK(std::vector<float>(v.lower.begin(), v.lower.end()) == all.lower);
  CHECK(std::vector<float>(v.upper.begin(), v.upper.end()) == all.upper);
  CHECK(m.mapped_bytes() > 0);
  // A copy back into memory is the appended columns.
  const TransitionColumns back = TransitionColumns::copy_of(v);
  CHECK(back.state == all.state);
  CHECK(back.next_state == all.next_state);
  fs::remove_all(dir);
}

TEST_CASE("column directories that are unfinished, damaged or not new are refused with the fix") {
  const TransitionColumns a = sessions(6, 0);
  const fs::path dir = scratch("refused");
  write(dir, {a});
  // Not new: nothing there is overwritten.
  CHECK_THROWS_WITH_AS(ColumnFileWriter(dir, 2, 1), doctest::Contains("is not an empty directory"), std::runtime_error);
  // Chunks of other dimensions.
  {
    const fs::path other = scratch("dims");
    ColumnFileWriter w(other, 3, 1);
    CHECK_THROWS_WITH_AS(w.append(a), doctest::Contains("a chunk of dimensions 2 x 1"), std::invalid_argument);
    fs::remove_all(other);
  }
  // Truncated file.
  fs::resize_file(dir / "state.bin", fs::file_size(dir / "state.bin") - 4);
  CHECK_THROWS_WITH_AS(MappedColumns{dir}, doctest::Contains("state.bin holds"), std::runtime_error);
  fs::remove_all(dir);
  // Unfinished: the header is written last.
  {
    ColumnFileWriter w(dir, 2, 1);
    w.append(a);
  }
  CHECK_THROWS_WITH_AS(MappedColumns{dir}, doctest::Contains("not a finished column directory"), std::runtime_error);
  fs::remove_all(dir);
  // Another row layout (another build).
  write(dir, {a});
  {
    std::ifstream in(dir / "columns.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string key = "\"row_bytes\": ";
    const std::size_t at = text.find(key);
    REQUIRE(at != std::string::npos);
    text = text.substr(0, at + key.size()) + "1" + text.substr(at + key.size());
    std::ofstream(dir / "columns.json") << text;
  }
  CHECK_THROWS_WITH_AS(MappedColumns{dir}, doctest::Contains("another row layout"), std::runtime_error);
  fs::remove_all(dir);
}

TEST_CASE("a column directory flushed, appended and flushed again maps its rows at each flush") {
  const TransitionColumns a = sessions(9, 0), b = sessions(5, 50);
  const fs::path dir = scratch("flush");
  ColumnFileWriter w(dir, 2, 1);
  w.append(a);
  w.flush();
  const MappedColumns first(dir);
  w.append(b);
  w.flush();
  const MappedColumns second(dir);
  CHECK(first.size() == 9);
  CHECK(second.size() == 14);
  // The first mapping still reads its rows (the files grew behind it).
  CHECK(std::vector<float>(first.view().state.begin(), first.view().state.end()) == a.state);
  TransitionColumns all = a;
  all.append(b);
  CHECK(TransitionColumns::copy_of(second.view()).dense_next_states() == all.dense_next_states());
  w.finish();
  CHECK_THROWS_AS(w.append(b), std::logic_error);
  fs::remove_all(dir);
}

TEST_CASE("records spilled to a file map back in order at each seal, and the file goes with the spill") {
  struct Rec {
    std::int64_t id;
    float x;
    float unused = 0;  // no padding: every byte written is set
  };
  const fs::path dir = scratch("spill");
  fs::create_directories(dir);
  const fs::path file = dir / "records.bin";
  {
    RecordSpill spill(file, sizeof(Rec));
    spill.seal();  // nothing yet: an empty view
    CHECK(spill.view<Rec>().empty());
    const std::vector<Rec> a = {{1, 0.5f}, {2, -1.0f}, {3, 2.25f}};
    spill.append(a.data(), a.size());
    CHECK(spill.view<Rec>().empty());  // appended, not sealed
    spill.seal();
    REQUIRE(spill.view<Rec>().size() == 3);
    CHECK(spill.view<Rec>()[2].id == 3);
    CHECK(spill.view<Rec>()[1].x == -1.0f);
    const std::vector<Rec> b = {{4, 7.0f}, {5, 8.0f}};
    spill.append(b.data(), b.size());
    spill.seal();
    REQUIRE(spill.view<Rec>().size() == 5);
    CHECK(spill.view<Rec>()[0].id == 1);
    CHECK(spill.view<Rec>()[4].x == 8.0f);
    CHECK(spill.appended() == 5);
    CHECK_THROWS_AS(spill.view<double>(), std::logic_error);  // another record size
    CHECK(fs::file_size(file) == 5 * sizeof(Rec));
    // A second spill on the same file is refused, naming it; the first is untouched.
    CHECK_THROWS_WITH_AS(RecordSpill(file, sizeof(Rec)), doctest::Contains("records.bin: exists"), std::runtime_error);
    CHECK(fs::file_size(file) == 5 * sizeof(Rec));
  }
  CHECK(!fs::exists(file));
  fs::remove_all(dir);
}
