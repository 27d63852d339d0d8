// See export.h. The HDF5 file is written with the library's C API: one flat
// dataset per key at the root (what D4RL's and d3rlpy's loaders expect),
// chunked and compressed (byte shuffle + gzip), metadata as root attributes.
#include "results/export.h"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <ostream>
#include <unordered_map>
#include <utility>

#include "core/atomic_file.h"

namespace mtf {

namespace fs = std::filesystem;

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

UnknownGroupError::UnknownGroupError(const fs::path& run_db, std::string name, std::vector<std::string> available)
    : RecordError(run_db.string() + ": no group named \"" + name + "\" (the run's groups: " + joined(available) +
                  ")"),
      name_(std::move(name)),
      available_(std::move(available)) {}

SessionEnds session_ends(const TransitionColumns& c) {
  struct Key {
    std::int64_t user;
    std::int32_t session;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      return std::hash<std::uint64_t>()(static_cast<std::uint64_t>(k.user) * 0x9E3779B97F4A7C15ull ^
                                        static_cast<std::uint32_t>(k.session));
    }
  };
  std::unordered_map<Key, std::size_t, KeyHash> last;
  last.reserve(c.size() / 4 + 1);
  SessionEnds e;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const TransitionColumns::Row& r = c.rows[i];
    const auto [it, fresh] = last.try_emplace(Key{r.user, r.session}, i);
    if (!fresh && r.step >= c.rows[it->second].step) it->second = i;
    e.terminals += r.done;
  }
  e.timeouts.assign(c.size(), 0);
  for (const auto& [key, i] : last)
    if (!c.rows[i].done) e.timeouts[i] = 1;
  e.sessions = last.size();
  e.cut = static_cast<std::size_t>(std::count(e.timeouts.begin(), e.timeouts.end(), 1));
  return e;
}

namespace {

/// Row subset of `c` (rows `keep`, in order).
TransitionColumns select(const TransitionColumns& c, const std::vector<std::size_t>& keep) {
  TransitionColumns out;
  out.state_dim = c.state_dim;
  out.action_dim = c.action_dim;
  const auto S = static_cast<std::size_t>(c.state_dim), A = static_cast<std::size_t>(c.action_dim);
  out.rows.reserve(keep.size());
  out.state.reserve(keep.size() * S);
  for (auto* v : {&out.action, &out.baseline}) v->reserve(keep.size() * A);
  const TransitionColumnsView from = c.view();
  for (const std::size_t i : keep) out.push_row(from, i);
  return out;
}

}  // namespace

ExportTable read_export_table(const fs::path& run_db, const ExportOptions& opts) {
  RunContents run = read_run(run_db, /*with_transitions=*/false, /*with_rows=*/false, opts.allow_partial);
  ExportTable t;
  t.info = std::move(run.info);
  t.schema_version = run.schema_version;
  t.started_at = run.started_at;
  t.finished_at = run.finished_at;
  t.source = run_db.filename().string();
  for (std::size_t g = 0; g < run.groups.size(); ++g) {
    if (run.groups[g].group != static_cast<int>(g))
      throw RecordError(run_db.string() + ": groups.grp runs " + std::to_string(run.groups[g].group) +
                        " where " + std::to_string(g) + " was expected (groups are numbered from 0; damaged file)");
    t.group_names.push_back(run.groups[g].name);
  }
  if (static_cast<int>(t.info.state_features.size()) != t.info.state_dim)
    throw RecordError(run_db.string() + ": run.state_features names " +
                      std::to_string(t.info.state_features.size()) + " features, run.state_dim is " +
                      std::to_string(t.info.state_dim) + " (damaged file)");

  std::vector<bool> wanted(t.group_names.size(), opts.groups.empty());
  for (const std::string& name : opts.groups) {
    const auto it = std::find(t.group_names.begin(), t.group_names.end(), name);
    if (it == t.group_names.end()) throw UnknownGroupError(run_db, name, t.group_names);
    wanted[static_cast<std::size_t>(it - t.group_names.begin())] = true;
  }
  for (std::size_t g = 0; g < wanted.size(); ++g)
    if (wanted[g]) t.exported_groups.push_back(t.group_names[g]);

  TransitionColumns all = read_transition_columns(run_db, opts.allow_partial);
  if (all.size() == 0)
    throw RecordError(run_db.string() +
                      ": the run recorded no transitions (its scenario's \"record\": {\"transitions\": false}); "
                      "run the scenario again with \"transitions\": true to export it");
  std::vector<std::size_t> keep;
  keep.reserve(all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const int g = all.rows[i].group;
    if (g < 0 || g >= static_cast<int>(wanted.size()))
      throw RecordError(run_db.string() + ": transition " + std::to_string(i) + " is in group " + std::to_string(g) +
                        ", which the groups table does not have (damaged file)");
    if (wanted[static_cast<std::size_t>(g)]) keep.push_back(i);
  }
  t.columns = keep.size() == all.size() ? std::move(all) : select(all, keep);
  t.ends = session_ends(t.columns);
  return t;
}

// ---------------------------------------------------------------------------
// HDF5
// ---------------------------------------------------------------------------

namespace {

/// Row-major datasets are chunked in blocks of about this many values (256 KiB
/// of float32): large enough for gzip to work well, small enough that reading a
/// slice decompresses little.
constexpr hsize_t kChunkValues = 65536;
/// gzip level. On the quickstart run's transitions (with the byte shuffle)
/// level 1 writes 44.5 MB; level 4 41.3 MB in 1.4 times the time, level 6
/// 39.8 MB in 3.5 times (BENCHMARKS.md, "Export").
constexpr unsigned kGzipLevel = 1;

/// The HDF5 error stack's innermost message (what went wrong, as the library says it).
std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        if (e->desc && *e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &reason);
  return reason;
}

/// An HDF5 identifier closed when it goes out of scope (-1: none).
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~Handle() {
    if (id >= 0) close(id);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

/// While it lives, the library does not print its error stack to stderr (the
/// reason goes into our message instead); the previous setting comes back after.
class QuietHdf5Errors {
 public:
  QuietHdf5Errors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

/// Writes one HDF5 file; every failing call throws RecordError naming the file,
/// what was being written, the library's reason and the likely fix.
class Hdf5Writer {
 public:
  explicit Hdf5Writer(const fs::path& file) : file_(file) {
    file_id_.id = check(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "creating the file");
    // numpy's bool as h5py writes it (and D4RL's files store terminals): an
    // enum of int8 with FALSE = 0 and TRUE = 1, which h5py reads back as bool.
    bool_type_.id = check(H5Tenum_create(H5T_NATIVE_INT8), "making the bool type");
    for (const auto& [name, value] : {std::pair<const char*, std::int8_t>{"FALSE", 0}, {"TRUE", 1}})
      check(H5Tenum_insert(bool_type_.id, name, &value), "making the bool type");
    string_type_.id = check(H5Tcopy(H5T_C_S1), "making the string type");
    check(H5Tset_size(string_type_.id, H5T_VARIABLE), "making the string type");
    check(H5Tset_cset(string_type_.id, H5T_CSET_UTF8), "making the string type");
  }
  Hdf5Writer(const Hdf5Writer&) = delete;
  Hdf5Writer& operator=(const Hdf5Writer&) = delete;

  /// Closes the file (flushing it); errors here are write errors too.
  void close() { check(H5Fclose(std::exchange(file_id_.id, -1)), "closing the file"); }

  hid_t bool_type() const { return bool_type_.id; }

  /// A dataset of `rows` x `cols` values (cols 0: one dimension) of `type`.
  template <typename T>
  void dataset(const char* name, hid_t type, const T* data, hsize_t rows, hsize_t cols = 0) {
    const std::string what = std::string("writing dataset ") + name;
    const std::array<hsize_t, 2> dims = {rows, cols};
    const int rank = cols == 0 ? 1 : 2;
    Handle space(check(H5Screate_simple(rank, dims.data(), nullptr), what), H5Sclose);
    Handle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), what), H5Pclose);
    if (rows > 0) {  // a chunk may not be larger than a fixed-size dataset, so empty ones stay contiguous
      const hsize_t width = std::max<hsize_t>(cols, 1);
      const std::array<hsize_t, 2> chunk = {std::clamp<hsize_t>(kChunkValues / width, 1, rows), cols};
      check(H5Pset_chunk(dcpl.id, rank, chunk.data()), what);
      check(H5Pset_shuffle(dcpl.id), what);
      check(H5Pset_deflate(dcpl.id, kGzipLevel), what);
    }
    Handle set(check(H5Dcreate2(file_id_.id, name, type, space.id, H5P_DEFAULT, dcpl.id, H5P_DEFAULT), what), H5Dclose);
    if (rows > 0) check(H5Dwrite(set.id, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), what);
  }

  void attribute(const char* name, const std::string& value) {
    const char* p = value.c_str();
    Handle space(check(H5Screate(H5S_SCALAR), attr_what(name)), H5Sclose);
    write_attribute(name, string_type_.id, space.id, &p);
  }
  void attribute(const char* name, const std::vector<std::string>& values) {
    std::vector<const char*> p;
    for (const std::string& v : values) p.push_back(v.c_str());
    const hsize_t n = p.size();
    Handle space(check(H5Screate_simple(1, &n, nullptr), attr_what(name)), H5Sclose);
    write_attribute(name, string_type_.id, space.id, p.data());
  }
  void attribute(const char* name, std::int64_t value) {
    Handle space(check(H5Screate(H5S_SCALAR), attr_what(name)), H5Sclose);
    write_attribute(name, H5T_NATIVE_INT64, space.id, &value);
  }
  void attribute(const char* name, std::uint64_t value) {
    Handle space(check(H5Screate(H5S_SCALAR), attr_what(name)), H5Sclose);
    write_attribute(name, H5T_NATIVE_UINT64, space.id, &value);
  }

 private:
  static std::string attr_what(const char* name) { return std::string("writing attribute ") + name; }

  void write_attribute(const char* name, hid_t type, hid_t space, const void* data) {
    const std::string what = attr_what(name);
    Handle attr(check(H5Acreate2(file_id_.id, name, type, space, H5P_DEFAULT, H5P_DEFAULT), what), H5Aclose);
    check(H5Awrite(attr.id, type, data), what);
  }

  template <typename R>
  R check(R result, const std::string& what) const {
    if (result < 0) {
      const std::string reason = hdf5_reason();
      throw RecordError(file_.string() + ": HDF5 failed " + what + (reason.empty() ? "" : " (" + reason + ")") +
                        "; check that the folder is writable and the disk has room");
    }
    return result;
  }

  // Declared in this order so that the handles close (in reverse) before the
  // error printing comes back, also when the constructor throws.
  fs::path file_;
  QuietHdf5Errors quiet_;
  Handle file_id_{-1, H5Fclose}, bool_type_{-1, H5Tclose}, string_type_{-1, H5Tclose};
};

/// The baseline, which a row may lack, with NaN where the run database holds
/// NULL (the bounds: TransitionColumns::dense_bounds).
std::vector<float> with_nan(const TransitionColumns& c, const std::vector<float>& v, bool TransitionColumns::Row::*known) {
  std::vector<float> out(v);
  const auto A = static_cast<std::size_t>(c.action_dim);
  for (std::size_t i = 0; i < c.size(); ++i)
    if (!(c.rows[i].*known))
      std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(i * A), A, std::numeric_limits<float>::quiet_NaN());
  return out;
}

template <typename T, typename F>
std::vector<T> per_row(const TransitionColumns& c, F&& f) {
  std::vector<T> out;
  out.reserve(c.size());
  for (const TransitionColumns::Row& r : c.rows) out.push_back(static_cast<T>(f(r)));
  return out;
}

}  // namespace

void write_hdf5(const ExportTable& t, const fs::path& file, const ExportOptions& opts) {
  const TransitionColumns& c = t.columns;
  const hsize_t N = c.size(), S = static_cast<hsize_t>(c.state_dim), A = static_cast<hsize_t>(c.action_dim);
  Hdf5Writer h(file);
  h.dataset("observations", H5T_NATIVE_FLOAT, c.state.data(), N, S);
  h.dataset("actions", H5T_NATIVE_FLOAT, c.action.data(), N, A);
  h.dataset("rewards", H5T_NATIVE_FLOAT, per_row<float>(c, [](const auto& r) { return r.reward; }).data(), N);
  h.dataset("terminals", h.bool_type(), per_row<std::uint8_t>(c, [](const auto& r) { return r.done; }).data(), N);
  h.dataset("timeouts", h.bool_type(), t.ends.timeouts.data(), N);
  if (opts.next_observations)
    h.dataset("next_observations", H5T_NATIVE_FLOAT, c.dense_next_states().data(), N, S);
  h.dataset("users", H5T_NATIVE_INT64, per_row<std::int64_t>(c, [](const auto& r) { return r.user; }).data(), N);
  h.dataset("sessions", H5T_NATIVE_INT32, per_row<std::int32_t>(c, [](const auto& r) { return r.session; }).data(), N);
  h.dataset("steps", H5T_NATIVE_INT32, per_row<std::int32_t>(c, [](const auto& r) { return r.step; }).data(), N);
  h.dataset("groups", H5T_NATIVE_INT32, per_row<std::int32_t>(c, [](const auto& r) { return r.group; }).data(), N);
  h.dataset("times", H5T_NATIVE_DOUBLE, per_row<double>(c, [](const auto& r) { return r.time; }).data(), N);
  using Row = TransitionColumns::Row;
  h.dataset("baseline_actions", H5T_NATIVE_FLOAT, with_nan(c, c.baseline, &Row::has_baseline).data(), N, A);
  h.dataset("action_low", H5T_NATIVE_FLOAT, c.dense_bounds(false, std::numeric_limits<float>::quiet_NaN()).data(), N, A);
  h.dataset("action_high", H5T_NATIVE_FLOAT, c.dense_bounds(true, std::numeric_limits<float>::quiet_NaN()).data(), N, A);
  h.dataset("log_densities", H5T_NATIVE_DOUBLE,
            per_row<double>(c, [](const auto& r) { return r.log_density; }).data(), N);

  h.attribute("format", std::string(kExportFormatName));
  h.attribute("format_version", std::int64_t{kExportFormatVersion});
  h.attribute("run_schema_version", std::int64_t{t.schema_version});
  h.attribute("scenario_name", t.info.scenario_name);
  h.attribute("seed", t.info.seed);
  h.attribute("run_code_version", t.info.code_version);
  h.attribute("exported_by", opts.exported_by);
  h.attribute("source", t.source);
  h.attribute("started_at", t.started_at);
  h.attribute("finished_at", t.finished_at);
  h.attribute("state_dim", std::int64_t{c.state_dim});
  h.attribute("action_dim", std::int64_t{c.action_dim});
  h.attribute("state_features", t.info.state_features);
  h.attribute("action_names", t.info.action_names);
  h.attribute("group_names", t.group_names);
  h.attribute("exported_groups", t.exported_groups);
  h.close();
}

// ---------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------

std::vector<std::string> csv_columns(const ExportTable& t, bool next_observations) {
  std::vector<std::string> cols;
  const auto numbered = [&](const char* prefix) {
    for (int a = 0; a < t.columns.action_dim; ++a) cols.push_back(prefix + std::to_string(a));
  };
  for (const std::string& f : t.info.state_features) cols.push_back("obs_" + f);
  numbered("act_");
  for (const char* c : {"reward", "terminal", "timeout", "user", "session", "step", "group", "time"})
    cols.emplace_back(c);
  numbered("baseline_");
  numbered("low_");
  numbered("high_");
  cols.emplace_back("log_density");
  if (next_observations)
    for (const std::string& f : t.info.state_features) cols.push_back("next_obs_" + f);
  return cols;
}

namespace {

/// A field as RFC 4180 writes it: quoted (quotes doubled) when it holds a comma, quote or line break.
void put_text(std::string& out, const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) {
    out += s;
    return;
  }
  out += '"';
  for (const char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  out += '"';
}

/// float32 with 9 significant digits (as %.9g): parsed as float, or as double
/// and then rounded to float, it gives back the same float.
void put(std::string& out, float v) {
  std::array<char, 32> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::general, 9);
  out.append(buf.data(), r.ptr);
}
/// double, shortest text that parses back to the same double.
void put(std::string& out, double v) {
  std::array<char, 32> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), r.ptr);
}
template <typename I>
  requires std::is_integral_v<I>
void put(std::string& out, I v) {
  std::array<char, 24> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), r.ptr);
}

}  // namespace

void write_csv(const ExportTable& t, std::ostream& out, const ExportOptions& opts) {
  const TransitionColumns& c = t.columns;
  const auto S = static_cast<std::size_t>(c.state_dim), A = static_cast<std::size_t>(c.action_dim);
  std::string buf;
  const std::vector<std::string> cols = csv_columns(t, opts.next_observations);
  for (std::size_t k = 0; k < cols.size(); ++k) {
    if (k) buf += ',';
    put_text(buf, cols[k]);
  }
  buf += '\n';
  // n values, "nan" each where v is empty (unknown).
  const auto floats = [&](std::span<const float> v, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) {
      buf += ',';
      if (!v.empty()) put(buf, v[k]);
      else buf += "nan";
    }
  };
  const auto flush = [&] {
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (!out) throw RecordError("writing the CSV failed (disk full, or the reader of stdout went away?)");
    buf.clear();
  };
  for (std::size_t i = 0; i < c.size(); ++i) {
    const TransitionColumns::Row& r = c.rows[i];
    for (std::size_t k = 0; k < S; ++k) {
      if (k) buf += ',';
      put(buf, c.state[i * S + k]);
    }
    floats(std::span<const float>(c.action).subspan(i * A, A), A);
    buf += ',';
    put(buf, r.reward);
    buf += r.done ? ",1" : ",0";
    buf += t.ends.timeouts[i] ? ",1," : ",0,";
    put(buf, r.user);
    buf += ',';
    put(buf, r.session);
    buf += ',';
    put(buf, r.step);
    buf += ',';
    put_text(buf, t.group_names[static_cast<std::size_t>(r.group)]);
    buf += ',';
    put(buf, r.time);
    floats(r.has_baseline ? std::span<const float>(c.baseline).subspan(i * A, A) : std::span<const float>(), A);
    floats(c.lower_of(i), A);
    floats(c.upper_of(i), A);
    buf += ',';
    if (r.has_log_density()) put(buf, r.log_density);
    else buf += "nan";
    if (opts.next_observations) {
      const std::span<const float> s_next = c.next_state_of(i);
      for (const float x : s_next) {
        buf += ',';
        put(buf, x);
      }
    }
    buf += '\n';
    if (buf.size() > (1u << 20)) flush();
  }
  flush();
  out.flush();
  if (!out) throw RecordError("writing the CSV failed (disk full, or the reader of stdout went away?)");
}

// ---------------------------------------------------------------------------
// Whole exports
// ---------------------------------------------------------------------------

namespace {

ExportSummary summary_of(const ExportTable& t) {
  ExportSummary s;
  s.transitions = t.columns.size();
  s.sessions = t.ends.sessions;
  s.terminals = t.ends.terminals;
  s.timeouts = t.ends.cut;
  s.groups = t.exported_groups;
  return s;
}

}  // namespace

ExportSummary export_run(const fs::path& run_db, const fs::path& out, ExportFormat format, const ExportOptions& opts) {
  const ExportTable t = read_export_table(run_db, opts);
  AtomicOutput file(out);
  if (format == ExportFormat::kHdf5) {
    write_hdf5(t, file.temp(), opts);
  } else {
    std::ofstream f(file.temp(), std::ios::binary | std::ios::trunc);
    if (!f) throw RecordError(out.string() + ": cannot write (check that the folder is writable)");
    try {
      write_csv(t, f, opts);
    } catch (const RecordError& e) {
      throw RecordError(out.string() + ": " + e.what());
    }
    f.close();
    if (!f) throw RecordError(out.string() + ": writing the CSV failed (disk full?)");
  }
  file.commit();
  return summary_of(t);
}

ExportSummary export_csv(const fs::path& run_db, std::ostream& out, const ExportOptions& opts) {
  const ExportTable t = read_export_table(run_db, opts);
  write_csv(t, out, opts);
  return summary_of(t);
}

}  // namespace mtf
