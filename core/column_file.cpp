// Column directories: written in chunks, memory-mapped (column_file.h).
#include "core/column_file.h"

#include <algorithm>
#include <array>
#include <bit>
#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "core/atomic_file.h"

namespace mtf {

namespace fs = std::filesystem;
namespace bip = boost::interprocess;

namespace {

// Rows are written and mapped as they are laid out in memory.
static_assert(std::is_trivially_copyable_v<TransitionColumns::Row>);

constexpr const char* kFormat = "mtfsim transition columns";
constexpr int kVersion = 2;  // 2: 80-byte rows, bounds stored only where known
constexpr const char* kHeader = "columns.json";

const char* byte_order() { return std::endian::native == std::endian::little ? "little" : "big"; }

fs::path file_of(const fs::path& dir, const char* column) { return dir / (std::string(column) + ".bin"); }

void write_bytes(std::ofstream& out, const void* data, std::size_t bytes) {
  if (bytes > 0) out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}

}  // namespace

ColumnFileWriter::ColumnFileWriter(fs::path dir, int state_dim, int action_dim)
    : dir_(std::move(dir)), state_dim_(state_dim), action_dim_(action_dim) {
  if (state_dim <= 0 || action_dim <= 0)
    throw std::invalid_argument("column files " + dir_.string() + ": state and action dimensions must be positive");
  std::error_code ec;
  if (fs::is_symlink(dir_, ec))
    throw std::runtime_error(dir_.string() + ": is a symbolic link; name a new directory for the column files");
  if (fs::exists(dir_, ec)) {
    if (!fs::is_directory(dir_, ec) || !fs::is_empty(dir_, ec))
      throw std::runtime_error(dir_.string() +
                               ": exists and is not an empty directory; name a new directory for the column "
                               "files (nothing there is overwritten)");
  } else if (!fs::create_directories(dir_, ec) || ec) {
    throw std::runtime_error(dir_.string() + ": cannot create the column directory (" + ec.message() +
                             "); check the path and permissions");
  } else {
    created_ = true;
  }
  const auto open = [&](std::ofstream& out, const char* column) {
    out.open(file_of(dir_, column), std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(file_of(dir_, column).string() + ": cannot create (check permissions)");
  };
  open(rows_out_, "rows");
  open(state_, "state");
  open(action_, "action");
  open(baseline_, "baseline");
  open(lower_, "lower");
  open(upper_, "upper");
  open(next_state_, "next_state");
}

ColumnFileWriter::~ColumnFileWriter() = default;

void ColumnFileWriter::append(const TransitionColumns& chunk) {
  if (finished_) throw std::logic_error("ColumnFileWriter::append after finish");
  if (chunk.size() == 0) return;  // (as TransitionColumns::append: an empty batch adds nothing)
  if (chunk.state_dim != state_dim_ || chunk.action_dim != action_dim_)
    throw std::invalid_argument("column files " + dir_.string() + ": a chunk of dimensions " +
                                std::to_string(chunk.state_dim) + " x " + std::to_string(chunk.action_dim) +
                                ", the files' are " + std::to_string(state_dim_) + " x " +
                                std::to_string(action_dim_));
  if (const std::string wrong = chunk.inconsistency(); !wrong.empty())
    throw std::invalid_argument("column files " + dir_.string() + ": a chunk's " + wrong);
  if (slots_ + chunk.next_state_slots() >= TransitionColumns::kFollowing ||
      bounds_slots_ + chunk.bounds_slots() >= TransitionColumns::kNoBounds)
    throw std::length_error("column files " + dir_.string() + ": more s' or bounds slots than 32 bits number");
  const auto offset = static_cast<std::uint32_t>(slots_), bounds_offset = static_cast<std::uint32_t>(bounds_slots_);
  std::vector<TransitionColumns::Row> rows(chunk.rows);
  for (TransitionColumns::Row& r : rows) {
    if (r.next_state_slot != TransitionColumns::kFollowing) r.next_state_slot += offset;
    if (r.bounds_slot != TransitionColumns::kNoBounds) r.bounds_slot += bounds_offset;
  }
  write_bytes(rows_out_, rows.data(), rows.size() * sizeof(TransitionColumns::Row));
  const auto floats = [](std::ofstream& out, const std::vector<float>& v) {
    write_bytes(out, v.data(), v.size() * sizeof(float));
  };
  floats(state_, chunk.state);
  floats(action_, chunk.action);
  floats(baseline_, chunk.baseline);
  floats(lower_, chunk.lower);
  floats(upper_, chunk.upper);
  floats(next_state_, chunk.next_state);
  rows_ += chunk.size();
  slots_ += chunk.next_state_slots();
  bounds_slots_ += chunk.bounds_slots();
  for (const std::ofstream* out : {&rows_out_, &state_, &action_, &baseline_, &lower_, &upper_, &next_state_})
    if (!*out)
      throw std::runtime_error(dir_.string() + ": writing the column files failed after " + std::to_string(rows_) +
                               " rows (disk full?)");
}

void ColumnFileWriter::flush() {
  if (finished_) return;
  const std::array<std::pair<std::ofstream*, const char*>, 7> files{{{&rows_out_, "rows"},
                                                                     {&state_, "state"},
                                                                     {&action_, "action"},
                                                                     {&baseline_, "baseline"},
                                                                     {&lower_, "lower"},
                                                                     {&upper_, "upper"},
                                                                     {&next_state_, "next_state"}}};
  for (const auto& [out, column] : files) {
    out->flush();
    if (!*out) throw std::runtime_error(file_of(dir_, column).string() + ": could not be written (disk full?)");
  }
  const nlohmann::json header = {{"format", kFormat},
                                 {"version", kVersion},
                                 {"state_dim", state_dim_},
                                 {"action_dim", action_dim_},
                                 {"rows", rows_},
                                 {"next_state_slots", slots_},
                                 {"bounds_slots", bounds_slots_},
                                 {"row_bytes", sizeof(TransitionColumns::Row)},
                                 {"byte_order", byte_order()}};
  write_file_atomically(dir_ / kHeader, header.dump(2) + "\n");
}

void ColumnFileWriter::finish() {
  if (finished_) return;
  flush();
  for (std::ofstream* out : {&rows_out_, &state_, &action_, &baseline_, &lower_, &upper_, &next_state_}) {
    out->close();
    if (!*out) throw std::runtime_error(dir_.string() + ": closing the column files failed (disk full?)");
  }
  finished_ = true;
}

void remove_column_files(const fs::path& dir, bool created) noexcept {
  std::error_code ec;
  for (const char* column : {"rows", "state", "action", "baseline", "lower", "upper", "next_state"})
    fs::remove(file_of(dir, column), ec);
  fs::remove(dir / kHeader, ec);
  if (created && fs::is_empty(dir, ec) && !ec) fs::remove(dir, ec);
}

std::shared_ptr<const MappedColumns> map_copy_of_rows(const TransitionColumnsView& from,
                                                      std::span<const std::size_t> rows, const fs::path& dir,
                                                      std::size_t chunk_rows) {
  if (chunk_rows == 0) throw std::invalid_argument("map_copy_of_rows: chunk rows must be at least 1");
  for (const std::size_t r : rows)
    if (r >= from.size())
      throw std::invalid_argument("map_copy_of_rows: row " + std::to_string(r) + " of " + std::to_string(from.size()));
  ColumnFileWriter writer(dir, from.state_dim, from.action_dim);
  try {
    TransitionColumns chunk;
    chunk.state_dim = from.state_dim;
    chunk.action_dim = from.action_dim;
    for (std::size_t k = 0; k < rows.size(); ++k) {
      chunk.push_row(from, rows[k]);
      if (chunk.size() == chunk_rows || k + 1 == rows.size()) {
        writer.append(chunk);
        chunk.clear();
      }
    }
    writer.finish();
    auto mapped = std::make_shared<const MappedColumns>(dir);
    remove_column_files(dir, writer.created_dir());
    return mapped;
  } catch (...) {
    remove_column_files(dir, writer.created_dir());
    throw;
  }
}

std::shared_ptr<const MappedColumns> map_copy_of_rows(const MappedColumns& from, std::span<const std::size_t> rows,
                                                      const fs::path& dir, std::size_t chunk_rows) {
  const InOrderReads in_order(from, std::is_sorted(rows.begin(), rows.end()));
  return map_copy_of_rows(from.view(), rows, dir, chunk_rows);
}

struct MappedColumns::Regions {
  std::vector<bip::mapped_region> regions;
};

MappedColumns::MappedColumns(const fs::path& dir) : dir_(dir), regions_(std::make_unique<Regions>()) {
  regions_->regions.reserve(7);
  const std::string where = dir.string() + ": ";
  const std::string rebuild = "; write the column files again from the run database";
  const fs::path header_path = dir / kHeader;
  std::error_code ec;
  if (!fs::is_regular_file(header_path, ec))
    throw std::runtime_error(where + "no " + std::string(kHeader) +
                             ": not a finished column directory (written until the end?)" + rebuild);
  std::ifstream in(header_path);
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(where + kHeader + " is not JSON (" + e.what() + ")" + rebuild);
  }
  const auto field = [&](const char* name) -> const nlohmann::json& {
    if (!h.is_object() || !h.contains(name)) throw std::runtime_error(where + kHeader + " lacks \"" + name + "\"" + rebuild);
    return h[name];
  };
  if (field("format") != kFormat) throw std::runtime_error(where + "not a directory of transition column files");
  if (field("version") != kVersion)
    throw std::runtime_error(where + "column files of version " + field("version").dump() + ", this build reads " +
                             std::to_string(kVersion) + rebuild);
  if (field("row_bytes") != sizeof(TransitionColumns::Row) || field("byte_order") != byte_order())
    throw std::runtime_error(where + "written by a build with another row layout or byte order (" +
                             field("row_bytes").dump() + " bytes, " + field("byte_order").dump() + "; this one: " +
                             std::to_string(sizeof(TransitionColumns::Row)) + ", \"" + byte_order() + "\")" + rebuild);
  std::int64_t rows = 0, slot_count = 0, bounds_count = 0;
  try {
    view_.state_dim = field("state_dim").get<int>();
    view_.action_dim = field("action_dim").get<int>();
    rows = field("rows").get<std::int64_t>();
    slot_count = field("next_state_slots").get<std::int64_t>();
    bounds_count = field("bounds_slots").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(where + kHeader + ": " + e.what() + rebuild);
  }
  // Bounds that keep every size below computable (2^40 rows is far beyond any run).
  constexpr std::int64_t kMaxRows = std::int64_t{1} << 40;
  if (view_.state_dim <= 0 || view_.action_dim <= 0 || view_.state_dim > 65536 || view_.action_dim > 65536 ||
      rows < 0 || rows > kMaxRows || slot_count < 0 || slot_count > rows || bounds_count < 0 ||
      bounds_count > rows)
    throw std::runtime_error(where + kHeader + " gives impossible sizes (dimensions " +
                             std::to_string(view_.state_dim) + " x " + std::to_string(view_.action_dim) + ", " +
                             std::to_string(rows) + " rows, " + std::to_string(slot_count) + " s' slots, " + std::to_string(bounds_count) + " bounds)" + rebuild);
  const auto n = static_cast<std::size_t>(rows), slots = static_cast<std::size_t>(slot_count),
             bounded = static_cast<std::size_t>(bounds_count);
  const auto S = static_cast<std::size_t>(view_.state_dim), A = static_cast<std::size_t>(view_.action_dim);
  // Maps one file of the expected size; an empty file is an empty span.
  const auto map = [&](const char* column, std::size_t bytes) -> const void* {
    const fs::path p = file_of(dir, column);
    const std::uintmax_t size = fs::file_size(p, ec);
    if (ec) throw std::runtime_error(p.string() + ": missing (" + ec.message() + ")" + rebuild);
    if (size != bytes)
      throw std::runtime_error(p.string() + " holds " + std::to_string(size) + " bytes, " + kHeader + " says " +
                               std::to_string(bytes) + " (damaged or unfinished)" + rebuild);
    if (bytes == 0) return nullptr;
    try {
      const bip::file_mapping file(p.c_str(), bip::read_only);
      bip::mapped_region& region = regions_->regions.emplace_back(file, bip::read_only);
      // Minibatches read rows at random: read ahead would only fill memory.
      region.advise(bip::mapped_region::advice_random);
      return region.get_address();
    } catch (const bip::interprocess_exception& e) {
      throw std::runtime_error(p.string() + ": cannot be mapped (" + e.what() + ")");
    }
  };
  const auto floats = [&](const char* column, std::size_t count) {
    return std::span<const float>(static_cast<const float*>(map(column, count * sizeof(float))), count);
  };
  view_.rows = std::span<const TransitionColumns::Row>(
      static_cast<const TransitionColumns::Row*>(map("rows", n * sizeof(TransitionColumns::Row))), n);
  view_.state = floats("state", n * S);
  view_.action = floats("action", n * A);
  view_.baseline = floats("baseline", n * A);
  view_.lower = floats("lower", bounded * A);
  view_.upper = floats("upper", bounded * A);
  view_.next_state = floats("next_state", slots * S);
  if (const std::string wrong = view_.inconsistency(); !wrong.empty())
    throw std::runtime_error(where + wrong + rebuild);
}

MappedColumns::~MappedColumns() = default;

void MappedColumns::advise_sequential(bool in_order) const {
  for (bip::mapped_region& r : regions_->regions)
    r.advise(in_order ? bip::mapped_region::advice_sequential : bip::mapped_region::advice_random);
}

std::size_t MappedColumns::mapped_bytes() const {
  std::size_t bytes = 0;
  for (const bip::mapped_region& r : regions_->regions) bytes += r.get_size();
  return bytes;
}

struct RecordSpill::Region {
  bip::mapped_region region;
};

RecordSpill::RecordSpill(fs::path file, std::size_t record_bytes)
    : file_(std::move(file)), record_bytes_(record_bytes) {
  if (record_bytes_ == 0) throw std::invalid_argument(file_.string() + ": records of 0 bytes");
  std::error_code ec;
  if (fs::exists(fs::symlink_status(file_, ec)))
    throw std::runtime_error(file_.string() + ": exists; name a new directory for the scratch files (nothing there is overwritten)");
  out_.open(file_, std::ios::binary | std::ios::trunc);
  if (!out_) throw std::runtime_error(file_.string() + ": cannot create (check the directory and its permissions)");
}

RecordSpill::~RecordSpill() {
  region_.reset();
  out_.close();
  std::error_code ec;
  fs::remove(file_, ec);  // scratch: never throws
}

void RecordSpill::append(const void* data, std::size_t count) {
  write_bytes(out_, data, count * record_bytes_);
  appended_ += count;
}

void RecordSpill::seal() {
  if (sealed_ == appended_ && (region_ || appended_ == 0)) return;
  out_.flush();
  if (!out_) throw std::runtime_error(file_.string() + ": writing failed (disk full?)");
  // The new mapping first: a failure leaves the previous one readable.
  std::unique_ptr<Region> next;
  try {
    const bip::file_mapping f(file_.c_str(), bip::read_only);
    next = std::make_unique<Region>(Region{bip::mapped_region(f, bip::read_only, 0, appended_ * record_bytes_)});
  } catch (const bip::interprocess_exception& e) {
    throw std::runtime_error(file_.string() + ": cannot be mapped (" + e.what() + ")");
  }
  region_ = std::move(next);
  mapped_data_ = region_->region.get_address();
  sealed_ = appended_;
}

}  // namespace mtf
