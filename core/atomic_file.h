// Writing a text output (a report, a baseline file, JSON) so that readers see
// either the old file or the whole new one, never a half-written file: the text
// goes to a temporary file beside the target, which is renamed onto it (an
// atomic replacement on one file system). Run databases do the same through
// the recorder (RecorderOptions::atomic).
#pragma once

#include <filesystem>
#include <string_view>

namespace mtf {

/// Writes `text` to `path` atomically; throws std::runtime_error naming the
/// path and the reason. On failure an earlier file at `path` is left as it was.
void write_file_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace mtf
