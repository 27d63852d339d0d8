// Transition columns larger than memory: written once, chunk by chunk, into a
// directory of column files and memory-mapped from there, so that a dataset
// reads them as it reads columns in memory (TransitionColumnsView) while the
// operating system pages in what sampling touches and drops what it has not
// touched lately. The files are a scratch copy in this machine's native
// layout (the run database stays the record): they are checked against the
// build that reads them, not meant to travel.
//
// A column directory holds rows.bin (TransitionColumns::Row as laid out in
// memory), state.bin, action.bin, baseline.bin, lower.bin, upper.bin and
// next_state.bin (floats, native byte order; lower and upper hold the bounded
// rows' bounds only, as TransitionColumns does), and columns.json, written
// last, which describes them: a directory without it was not finished.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <stdexcept>
#include <type_traits>

#include "core/transitions.h"

namespace mtf {

/// Writes transition columns into a new column directory, chunk by chunk.
/// Not copyable. Destroyed without finish(), it leaves an unfinished directory
/// that MappedColumns refuses.
class ColumnFileWriter {
 public:
  /// Creates `dir` (which must not exist, or be an empty directory, not a
  /// symbolic link) for columns of these dimensions. Throws std::runtime_error
  /// naming the directory.
  ColumnFileWriter(std::filesystem::path dir, int state_dim, int action_dim);
  ~ColumnFileWriter();
  ColumnFileWriter(const ColumnFileWriter&) = delete;
  ColumnFileWriter& operator=(const ColumnFileWriter&) = delete;

  /// Appends every row of `chunk` (same dimensions, consistent). A chunk's
  /// s' and bounds slots are renumbered after those already written; its last row keeps
  /// its own s' (as TransitionColumns::append does).
  void append(const TransitionColumns& chunk);
  /// Makes the rows appended so far a finished column directory: flushes the
  /// files and writes columns.json for them. More rows may be appended after
  /// (a MappedColumns opened before keeps seeing the rows it was opened with).
  /// Throws std::runtime_error naming the file that could not be written (a
  /// full disk, say).
  void flush();
  /// flush() and close the files: no more appends.
  void finish();

  std::size_t rows() const { return rows_; }
  const std::filesystem::path& dir() const { return dir_; }
  /// Whether the writer created dir() (it did not exist before).
  bool created_dir() const { return created_; }

 private:
  std::filesystem::path dir_;
  int state_dim_, action_dim_;
  std::size_t rows_ = 0, slots_ = 0, bounds_slots_ = 0;
  bool finished_ = false, created_ = false;
  std::ofstream rows_out_, state_, action_, baseline_, lower_, upper_, next_state_;
};

/// Removes the files a ColumnFileWriter writes in `dir` (the column files and
/// columns.json), nothing else, and then `dir` itself when `created` (the
/// writer made it) and it is empty. Never throws.
void remove_column_files(const std::filesystem::path& dir, bool created) noexcept;

/// A finished column directory, memory-mapped read-only. Not copyable; share
/// it through a shared_ptr (datasets keep it alive while they view it).
class MappedColumns {
 public:
  /// Maps the files of `dir`; throws std::runtime_error naming the directory
  /// and the fix when it is unfinished, written by another build (another row
  /// layout or byte order) or damaged (file sizes that disagree with
  /// columns.json, inconsistent s' slots).
  explicit MappedColumns(const std::filesystem::path& dir);
  ~MappedColumns();
  MappedColumns(const MappedColumns&) = delete;
  MappedColumns& operator=(const MappedColumns&) = delete;

  /// The columns (valid while this object lives).
  const TransitionColumnsView& view() const { return view_; }
  std::size_t size() const { return view_.size(); }
  const std::filesystem::path& dir() const { return dir_; }
  /// Bytes of the mapped files.
  std::size_t mapped_bytes() const;
  /// How the rows will be read next, a hint to the operating system: at
  /// random (as mapped: minibatches; a page fault reads that page alone) or
  /// in order (a pass over the rows: it reads ahead). The values read are
  /// the same either way.
  void advise_sequential(bool in_order) const;

 private:
  struct Regions;
  std::filesystem::path dir_;
  std::unique_ptr<Regions> regions_;
  TransitionColumnsView view_;
};

/// While it lives, `columns` are read in order (advise_sequential(true)),
/// then at random again; nothing when `on` is false.
class InOrderReads {
 public:
  explicit InOrderReads(const MappedColumns& columns, bool on = true) : columns_(on ? &columns : nullptr) {
    if (columns_) columns_->advise_sequential(true);
  }
  ~InOrderReads() {
    if (columns_) columns_->advise_sequential(false);
  }
  InOrderReads(const InOrderReads&) = delete;
  InOrderReads& operator=(const InOrderReads&) = delete;

 private:
  const MappedColumns* columns_;
};

/// Rows `rows` of `from` (in that order, each with its s') copied,
/// `chunk_rows` at a time, into the new column directory `dir` (created as
/// ColumnFileWriter does) and mapped. The files are removed once mapped: the
/// mapping keeps them readable while the returned columns live, and their disk
/// space goes with them (POSIX). A subset of rows with files of its own is
/// read from its own pages only, where in the full columns each of its pages
/// also holds other rows (users of every group interleave): what sampling a
/// dataset larger than the page cache reads from disk. The returned columns'
/// dir() names the removed directory. Throws as ColumnFileWriter and
/// MappedColumns do, std::invalid_argument for a row beyond `from`.
std::shared_ptr<const MappedColumns> map_copy_of_rows(const TransitionColumnsView& from,
                                                      std::span<const std::size_t> rows,
                                                      const std::filesystem::path& dir,
                                                      std::size_t chunk_rows = 65536);
/// The same from mapped columns, read in order meanwhile (advise_sequential)
/// when `rows` ascend.
std::shared_ptr<const MappedColumns> map_copy_of_rows(const MappedColumns& from, std::span<const std::size_t> rows,
                                                      const std::filesystem::path& dir,
                                                      std::size_t chunk_rows = 65536);

/// Fixed-size records (trivially copyable) out of memory: appended to one
/// scratch file and memory-mapped for reading, for what a run out of core
/// would otherwise hold as a growing vector (the impressions the weighted GAUC
/// reads). Not copyable. The file is removed when this object is destroyed.
class RecordSpill {
 public:
  /// Creates `file` (which must not exist) for records of `record_bytes`.
  /// Throws std::runtime_error naming the file (std::invalid_argument for
  /// records of 0 bytes).
  RecordSpill(std::filesystem::path file, std::size_t record_bytes);
  ~RecordSpill();
  RecordSpill(const RecordSpill&) = delete;
  RecordSpill& operator=(const RecordSpill&) = delete;

  /// Appends `count` records from `data`.
  void append(const void* data, std::size_t count);
  /// Flushes the records appended so far and maps them: view() then reads
  /// them all, until the next seal(). Throws std::runtime_error naming the
  /// file when it cannot be written or mapped (a full disk, say).
  void seal();
  std::size_t appended() const { return appended_; }

  /// The records of type T mapped by the last seal().
  template <typename T>
  std::span<const T> view() const {
    static_assert(std::is_trivially_copyable_v<T>);
    if (sizeof(T) != record_bytes_) throw std::logic_error("RecordSpill::view: another record size");
    return {static_cast<const T*>(mapped_data_), sealed_};
  }

 private:
  struct Region;
  std::filesystem::path file_;
  std::size_t record_bytes_;
  std::size_t appended_ = 0, sealed_ = 0;
  std::ofstream out_;
  std::unique_ptr<Region> region_;
  const void* mapped_data_ = nullptr;
};

}  // namespace mtf
