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

 private:
  struct Regions;
  std::filesystem::path dir_;
  std::unique_ptr<Regions> regions_;
  TransitionColumnsView view_;
};

}  // namespace mtf
