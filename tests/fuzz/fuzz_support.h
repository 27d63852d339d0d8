// What the fuzz targets of tests/fuzz/ share: the input as a file (for the
// loaders that take a path) and the verdict on a bug the sanitizers cannot see.
//
// A target treats the error its loader documents (ScenarioError, ExperimentError,
// AgentFileError, RecordError, ...) as a normal outcome and returns; any other
// exception escapes to libFuzzer, which reports it as a crash ("deadly signal"
// after std::terminate), as it does a sanitizer report, a leak or a hang.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace mtf::fuzz {

/// A file that holds the current input, removed at exit. One per process and
/// target, in $TMPDIR (tests/fuzz/run.sh points it at a scratch folder).
class InputFile {
 public:
  explicit InputFile(const std::string& stem)
      : path_(std::filesystem::temp_directory_path() /
              (stem + "-" + std::to_string(::getpid()) + ".fuzz")) {}
  ~InputFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// Replaces the file's contents with `data`.
  const std::filesystem::path& write(const std::uint8_t* data, std::size_t size) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) {
      std::fprintf(stderr, "fuzz: cannot write %s\n", path_.c_str());
      std::abort();
    }
    return path_;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Stops the run on a broken property (a round trip that changes the value...).
[[noreturn]] inline void property_failed(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz: property failed: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace mtf::fuzz
