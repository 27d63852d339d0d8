// See atomic_file.h.
#include "core/atomic_file.h"

#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace mtf {

namespace fs = std::filesystem;

AtomicOutput::AtomicOutput(fs::path path) : path_(std::move(path)) {
  temp_ = path_;
  temp_ += ".tmp-" + std::to_string(::getpid());
}

AtomicOutput::~AtomicOutput() {
  if (committed_) return;
  std::error_code ec;
  fs::remove(temp_, ec);
}

void AtomicOutput::commit() {
  std::error_code ec;
  fs::rename(temp_, path_, ec);
  if (ec) {
    const std::string reason = ec.message();
    fs::remove(temp_, ec);
    throw std::runtime_error(path_.string() + ": cannot replace the file (" + reason +
                             "); the previous file is unchanged");
  }
  committed_ = true;
}

void write_file_atomically(const fs::path& path, std::string_view text) {
  AtomicOutput out(path);
  {
    std::ofstream f(out.temp(), std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error(path.string() + ": cannot write (check the folder exists and is writable)");
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.flush();
    if (!f) throw std::runtime_error(path.string() + ": writing failed (disk full?); the previous file is unchanged");
  }
  out.commit();
}

}  // namespace mtf
