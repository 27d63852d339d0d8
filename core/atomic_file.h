// Writing an output (a report, a baseline file, JSON, an export) so that readers
// see either the old file or the whole new one, never a half-written file: the
// output goes to a temporary file beside the target, which is renamed onto it
// (an atomic replacement on one file system). Run databases do the same through
// the recorder (RecorderOptions::atomic).
#pragma once

#include <filesystem>
#include <string_view>

namespace mtf {

/// Writes `text` to `path` atomically; throws std::runtime_error naming the
/// path and the reason. On failure an earlier file at `path` is left as it was.
void write_file_atomically(const std::filesystem::path& path, std::string_view text);

/// An output too large to hold in memory, or written by a library that takes a
/// file name (HDF5): the writer writes temp(), a file beside path() named
/// `<path>.tmp-<pid>`, then calls commit(), which renames it onto path().
/// Destroyed without a commit (an exception on the way), the temporary file is
/// removed and an earlier file at path() is left as it was. Not copyable.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::filesystem::path path);
  ~AtomicOutput();  ///< removes the temporary file unless committed; never throws
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& temp() const { return temp_; }
  /// Renames temp() onto path(); throws std::runtime_error naming the path and
  /// the reason (the temporary file is then removed).
  void commit();

 private:
  std::filesystem::path path_, temp_;
  bool committed_ = false;
};

}  // namespace mtf
