#include "daemon/log_reader.h"

#include <fstream>

namespace ptbuild {

std::vector<std::string> read_log(const std::string& path, int64_t tail_lines) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  const std::streamoff size = in.tellg();
  std::streamoff start = 0;
  if (tail_lines > 0) {
    // Walk back block by block until enough newlines are behind us.
    const std::streamoff block = 64 * 1024;
    std::streamoff pos = size;
    int64_t newlines = 0;
    std::string buf;
    bool found = false;
    while (pos > 0 && !found) {
      std::streamoff len = std::min(block, pos);
      pos -= len;
      buf.resize(static_cast<size_t>(len));
      in.seekg(pos);
      in.read(buf.data(), len);
      for (std::streamoff i = len - 1; i >= 0; --i) {
        if (buf[static_cast<size_t>(i)] != '\n') continue;
        // A newline that ends the file does not start a line of its own.
        if (pos + i == size - 1) continue;
        if (++newlines == tail_lines) {
          start = pos + i + 1;
          found = true;
          break;
        }
      }
    }
  }
  std::vector<std::string> chunks;
  in.clear();
  in.seekg(start);
  std::streamoff left = size - start;
  while (left > 0) {
    std::string chunk(static_cast<size_t>(std::min<std::streamoff>(left, kLogChunk)), '\0');
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    left -= static_cast<std::streamoff>(chunk.size());
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

}  // namespace ptbuild
