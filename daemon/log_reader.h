// Reading a build log back for `ptbuild log`: all of it, or its last N lines, in chunks that fit
// the protocol's line cap.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ptbuild {

inline constexpr size_t kLogChunk = 256 * 1024;

// Chunks of at most kLogChunk bytes. tail_lines == 0: the whole file. A missing file: nothing.
std::vector<std::string> read_log(const std::string& path, int64_t tail_lines);

}  // namespace ptbuild
