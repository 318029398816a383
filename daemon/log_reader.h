// Reading a build log back (`ptbuild log`, `log -f`, diagnosis after a restart): zstd logs
// (<id>.log.zst, written by BuildLog) and the plain logs of older versions alike, with the tail
// segments of a giant log after its head.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ptbuild {

inline constexpr size_t kLogChunk = 256 * 1024;

// The tail segments of a giant log (see BuildLog): <path>.tail.<n>.
std::string log_segment_path(const std::string& path, int n);
int last_log_segment(const std::string& path);  // 0 when there is none

// A place in a log: which file (0 = the log itself, n = tail segment n), the offset in it of the
// zstd frame being read (of the byte, for a plain log), and how many decoded bytes of that
// frame were already read.
struct LogCursor {
  int file = 0;
  uint64_t offset = 0;
  uint64_t skip = 0;
};

class LogReader {
 public:
  explicit LogReader(std::string path) : path_(std::move(path)) {}

  // The decoded text from `cursor` on, about `max` bytes at most (whole frames past it are not
  // started), advancing the cursor. Reads what is on disk now: an unfinished last frame up to
  // where it is written. Sets `at_end` when nothing more is on disk.
  std::string read(LogCursor& cursor, size_t max, bool& at_end);
  // Where the last `lines` lines begin (a newline that ends the log starts no line).
  LogCursor tail_start(int64_t lines);

 private:
  std::string path_;
};

// The text of zstd frames, the last of which may be unfinished (cut by a crash): what it holds
// up to its last complete block.
std::string decode_zstd(std::string_view frames);

// The whole log, or its last `tail_lines` lines (0: all), in chunks of at most kLogChunk bytes.
// A missing file: nothing.
std::vector<std::string> read_log(const std::string& path, int64_t tail_lines);

}  // namespace ptbuild
