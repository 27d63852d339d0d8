// Tests of the export (results/export.h): where sessions end (terminals and
// timeouts), the CSV's columns and exact values, the group filter, the HDF5
// datasets read back through the HDF5 library, and atomic outputs. The command
// line and a whole simulated run, read back with h5py, are tests/export_test.sh.
#include "results/export.h"

#include <doctest/doctest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>

namespace fs = std::filesystem;
using namespace mtf;

namespace {

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("mtf_export_test_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// Rows (user, session, step, done) of a columnar set with 1-float states and actions.
TransitionColumns columns(std::initializer_list<std::tuple<std::int64_t, int, int, bool>> rows) {
  TransitionColumns c;
  c.state_dim = 1;
  c.action_dim = 1;
  for (const auto& [user, session, step, done] : rows) {
    TransitionColumns::Row r;
    r.user = user;
    r.session = session;
    r.step = step;
    r.done = done;
    const float zero = 0.0f;
    c.push(r, {&zero, 1}, {&zero, 1}, {&zero, 1}, {&zero, 1}, {}, {});  // no bounds
  }
  return c;
}

RunInfo info() {
  RunInfo i;
  i.scenario_name = "export-test";
  i.scenario_json = R"({"name":"export-test"})";
  i.seed = 42;
  i.code_version = "test";
  i.state_dim = 2;
  i.action_dim = 2;
  i.state_features = {"age_group", "bias"};
  i.action_names = {"play.pow", "skip.pow"};
  return i;
}

/// A finished run database: groups "control" (user 1: no baseline, bounds or
/// density) and "explore, wide" (user 2: all of them, one point mass), one
/// session each; user 2's session is cut (its last row is not done).
fs::path small_run(const fs::path& dir) {
  const fs::path db = dir / "run.sqlite";
  Recorder rec(db, info());
  rec.write_groups({{0, "control", 0.5, "constant", "{}", 1}, {1, "explore, wide", 0.5, "bounded_uniform", "{}", 1}});
  RecordBatch b;
  for (int step = 0; step < 3; ++step) {
    TransitionRow t;
    t.user = 1;
    t.session = 0;
    t.step = step;
    t.group = 0;
    t.time = 100.5 + step;
    t.state = {0.1f * static_cast<float>(step), 1.0f};
    t.action = {-0.3f, 1.0f / 3.0f};
    t.next_state = {0.1f * static_cast<float>(step + 1), 1.0f};
    t.reward = 2.0f / 3.0f + static_cast<float>(step);
    t.done = step == 2;
    b.transitions.push_back(t);
  }
  for (int step = 0; step < 2; ++step) {
    TransitionRow t;
    t.user = 2;
    t.session = 4;
    t.step = step;
    t.group = 1;
    t.time = 7200.25 + step;
    t.state = {1e-8f, 1.0f};
    t.action = {0.5f, -0.5f};
    t.next_state = {2e-8f, 1.0f};
    t.reward = -0.1f;
    t.done = false;
    t.baseline = {0.25f, -0.25f};
    t.lower = {0.1f, -0.4f};
    t.upper = {0.4f, -0.1f};
    if (step == 0) t.log_density = -1.2345678901234567;
    b.transitions.push_back(t);
  }
  rec.submit(std::move(b));
  rec.finish({}, 1.0);
  return db;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  std::string f;
  bool quoted = false;
  for (const char ch : line) {
    if (ch == '"') quoted = !quoted;
    else if (ch == ',' && !quoted) out.push_back(std::exchange(f, {}));
    else f += ch;
  }
  out.push_back(f);
  return out;
}

template <typename T>
std::vector<T> read_dataset(const fs::path& file, const char* name, hid_t type, std::size_t n) {
  std::vector<T> v(n);
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  REQUIRE(d >= 0);
  const hid_t space = H5Dget_space(d);
  CHECK(H5Sget_simple_extent_npoints(space) == static_cast<hssize_t>(n));
  CHECK(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  return v;
}

bool has_temp_files(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a session's last row is a timeout exactly when it is not done, whatever the row order") {
  // (user 1, session 0) ends with done; (1, 1) is cut after step 1; (2, 0)
  // arrives out of order and is cut after step 1, which comes first.
  const TransitionColumns c = columns({{1, 0, 0, false},
                                       {1, 0, 1, false},
                                       {1, 0, 2, true},
                                       {1, 1, 0, false},
                                       {1, 1, 1, false},
                                       {2, 0, 1, false},
                                       {2, 0, 0, false}});
  const SessionEnds e = session_ends(c);
  CHECK(e.timeouts == std::vector<std::uint8_t>{0, 0, 0, 0, 1, 1, 0});
  CHECK(e.sessions == 3);
  CHECK(e.terminals == 1);
  CHECK(e.cut == 2);
  // Users with the same session number are different sessions.
  const SessionEnds two = session_ends(columns({{1, 0, 0, true}, {2, 0, 0, false}}));
  CHECK(two.timeouts == std::vector<std::uint8_t>{0, 1});
  CHECK(two.sessions == 2);
}

TEST_CASE("the CSV has the documented columns and every value exactly, NaN where the database holds NULL") {
  TempDir dir("csv");
  const fs::path db = small_run(dir.path);
  std::ostringstream out;
  const ExportSummary s = export_csv(db, out, {});
  CHECK(s.transitions == 5);
  CHECK(s.sessions == 2);
  CHECK(s.terminals == 1);
  CHECK(s.timeouts == 1);
  const std::vector<std::string> lines = lines_of(out.str());
  REQUIRE(lines.size() == 6);
  CHECK(lines[0] ==
        "obs_age_group,obs_bias,act_0,act_1,reward,terminal,timeout,user,session,step,group,time,"
        "baseline_0,baseline_1,low_0,low_1,high_0,high_1,log_density");
  // 9 significant digits for float32 (2/3 + 0 and 1/3 as float32), shortest round trip for doubles.
  CHECK(lines[1] == "0,1,-0.300000012,0.333333343,0.666666687,0,0,1,0,0,control,100.5,nan,nan,nan,nan,nan,nan,nan");
  CHECK(lines[3] == "0.200000003,1,-0.300000012,0.333333343,2.66666675,1,0,1,0,2,control,102.5,nan,nan,nan,nan,nan,nan,nan");
  CHECK(lines[4] == "9.99999994e-09,1,0.5,-0.5,-0.100000001,0,0,2,4,0,\"explore, wide\",7200.25,0.25,-0.25,0.100000001,"
                    "-0.400000006,0.400000006,-0.100000001,-1.2345678901234567");
  CHECK(lines[5] == "9.99999994e-09,1,0.5,-0.5,-0.100000001,0,1,2,4,1,\"explore, wide\",7201.25,0.25,-0.25,0.100000001,"
                    "-0.400000006,0.400000006,-0.100000001,nan");
  // Every float field parses back to the float32 that was written.
  const std::vector<std::string> f = fields(lines[1]);
  CHECK(std::strtof(f[3].c_str(), nullptr) == 1.0f / 3.0f);
  CHECK(static_cast<float>(std::strtod(f[4].c_str(), nullptr)) == 2.0f / 3.0f);
}

TEST_CASE("next observations are columns only when asked for") {
  TempDir dir("next");
  const fs::path db = small_run(dir.path);
  ExportOptions o;
  o.next_observations = true;
  std::ostringstream out;
  export_csv(db, out, o);
  const std::vector<std::string> lines = lines_of(out.str());
  const std::vector<std::string> header = fields(lines[0]);
  REQUIRE(header.size() == 21);
  CHECK(header[19] == "next_obs_age_group");
  CHECK(header[20] == "next_obs_bias");
  const std::vector<std::string> row = fields(lines[1]);
  CHECK(row[19] == "0.100000001");
  CHECK(row[20] == "1");
}

TEST_CASE("the group filter keeps the named groups' rows; an unknown name lists the run's groups") {
  TempDir dir("groups");
  const fs::path db = small_run(dir.path);
  ExportOptions o;
  o.groups = {"explore, wide"};
  const ExportTable t = read_export_table(db, o);
  CHECK(t.columns.size() == 2);
  CHECK(t.exported_groups == std::vector<std::string>{"explore, wide"});
  CHECK(t.group_names == std::vector<std::string>{"control", "explore, wide"});
  CHECK(t.columns.rows[0].user == 2);
  CHECK(t.columns.rows[0].group == 1);  // indices stay the run's, so group_names still names them
  CHECK(t.columns.state == std::vector<float>{1e-8f, 1.0f, 1e-8f, 1.0f});
  CHECK(t.columns.baseline == std::vector<float>{0.25f, -0.25f, 0.25f, -0.25f});
  CHECK(t.ends.timeouts == std::vector<std::uint8_t>{0, 1});

  o.groups = {"control", "nope"};
  try {
    (void)read_export_table(db, o);
    FAIL("an unknown group was accepted");
  } catch (const UnknownGroupError& e) {
    CHECK(e.name() == "nope");
    CHECK(e.available() == std::vector<std::string>{"control", "explore, wide"});
    CHECK(std::string(e.what()).find("no group named \"nope\" (the run's groups: control, explore, wide)") !=
          std::string::npos);
  }
}

TEST_CASE("the HDF5 file holds every dataset with the values of the run database") {
  TempDir dir("hdf5");
  const fs::path db = small_run(dir.path);
  const fs::path h5 = dir.path / "run.h5";
  ExportOptions o;
  o.next_observations = true;
  const ExportSummary s = export_run(db, h5, ExportFormat::kHdf5, o);
  CHECK(s.transitions == 5);
  CHECK(read_dataset<float>(h5, "rewards", H5T_NATIVE_FLOAT, 5) ==
        std::vector<float>{2.0f / 3.0f, 2.0f / 3.0f + 1, 2.0f / 3.0f + 2, -0.1f, -0.1f});
  CHECK(read_dataset<std::uint8_t>(h5, "terminals", H5T_NATIVE_UINT8, 5) == std::vector<std::uint8_t>{0, 0, 1, 0, 0});
  CHECK(read_dataset<std::uint8_t>(h5, "timeouts", H5T_NATIVE_UINT8, 5) == std::vector<std::uint8_t>{0, 0, 0, 0, 1});
  CHECK(read_dataset<std::int64_t>(h5, "users", H5T_NATIVE_INT64, 5) == std::vector<std::int64_t>{1, 1, 1, 2, 2});
  CHECK(read_dataset<std::int32_t>(h5, "groups", H5T_NATIVE_INT32, 5) == std::vector<std::int32_t>{0, 0, 0, 1, 1});
  const std::vector<float> obs = read_dataset<float>(h5, "observations", H5T_NATIVE_FLOAT, 10);
  CHECK(obs[4] == 0.2f);
  CHECK(obs[6] == 1e-8f);
  const std::vector<float> next = read_dataset<float>(h5, "next_observations", H5T_NATIVE_FLOAT, 10);
  CHECK(next[0] == 0.1f);
  const std::vector<float> low = read_dataset<float>(h5, "action_low", H5T_NATIVE_FLOAT, 10);
  CHECK(std::isnan(low[0]));
  CHECK(low[6] == 0.1f);
  const std::vector<double> logd = read_dataset<double>(h5, "log_densities", H5T_NATIVE_DOUBLE, 5);
  CHECK(std::isnan(logd[0]));
  CHECK(logd[3] == -1.2345678901234567);
  CHECK(std::isnan(logd[4]));
  CHECK_FALSE(has_temp_files(dir.path));
}

TEST_CASE("an HDF5 file that cannot be created is reported with the path, the step and the library's reason") {
  TempDir dir("unwritable");
  const ExportTable t = read_export_table(small_run(dir.path), {});
  const fs::path bad = dir.path / "no such folder" / "x.h5";
  // The library's own error printing is silenced while writing, then set back as it was.
  H5E_auto2_t func_before = nullptr, func_after = nullptr;
  void* data_before = nullptr;
  void* data_after = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &func_before, &data_before);
  try {
    write_hdf5(t, bad, {});
    FAIL("an HDF5 file was written into a missing folder");
  } catch (const RecordError& e) {
    const std::string what = e.what();
    CHECK(what.find(bad.string() + ": HDF5 failed creating the file (") != std::string::npos);
    CHECK(what.find("check that the folder is writable") != std::string::npos);
  }
  H5Eget_auto2(H5E_DEFAULT, &func_after, &data_after);
  const bool restored = func_after == func_before && data_after == data_before;
  CHECK(restored);
}

TEST_CASE("a failed export leaves the earlier output as it was and no temporary file") {
  TempDir dir("atomic");
  const fs::path db = small_run(dir.path);
  const fs::path out = dir.path / "run.csv";
  { std::ofstream(out) << "earlier export\n"; }
  ExportOptions o;
  o.groups = {"missing"};
  CHECK_THROWS_AS(export_run(db, out, ExportFormat::kCsv, o), UnknownGroupError);
  // An unfinished run is refused before anything is written.
  const fs::path partial = dir.path / "partial.sqlite";
  {
    RecorderOptions ro;
    ro.atomic = false;
    Recorder rec(partial, info(), ro);
    rec.write_groups({{0, "control", 1.0, "constant", "{}", 1}});
  }  // destroyed without finish(): finished_at stays NULL
  CHECK_THROWS_AS(export_run(partial, out, ExportFormat::kHdf5, {}), UnfinishedRunError);
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  CHECK(line == "earlier export");
  CHECK_FALSE(has_temp_files(dir.path));
  // The same run read anyway: a run with no transitions is refused with the fix.
  ExportOptions anyway;
  anyway.allow_partial = true;
  try {
    (void)read_export_table(partial, anyway);
    FAIL("a run without transitions was exported");
  } catch (const RecordError& e) {
    CHECK(std::string(e.what()).find("recorded no transitions") != std::string::npos);
  }
}
