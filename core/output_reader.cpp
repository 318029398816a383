#include "core/output_reader.h"

#include <cstring>
#include <functional>

namespace ptbuild {

bool OutputReader::feed(std::string_view chunk) {
  // Escapes and carriage returns are rare in build output: looked for once in the chunk, not in
  // each of its hundreds of lines.
  bool plain =
      !std::memchr(chunk.data(), '\x1b', chunk.size()) && !std::memchr(chunk.data(), '\r', chunk.size());
  const char* end = chunk.data() + chunk.size();
  bool progressed = false;
  lines_.feed(chunk, [&](std::string_view line) {
    bool in_chunk =
        std::less_equal<>{}(chunk.data(), line.data()) && std::less_equal<>{}(line.data() + line.size(), end);
    progressed |= read_line(line, in_chunk, in_chunk && plain);
  });
  scanner_.settle();  // the chunk's lines go with it
  return progressed;
}

void OutputReader::finish() {
  lines_.finish([&](std::string_view line) { read_line(line, false, false); });
}

bool OutputReader::read_line(std::string_view raw, bool in_chunk, bool plain) {
  std::string_view line = plain ? raw : strip_ansi(raw, stripped_);
  // A line in the chunk, unstripped, stays where it is until the chunk is read.
  bool held = in_chunk && line.data() == raw.data();
  // ninja's status lines, nearly all of a long build's: read once, for progress only.
  if (std::optional<Progress> counts = ninja_status(line)) {
    scanner_.feed_clean(line, true, held);
    return progress_.feed_status(*counts, line).has_value();
  }
  scanner_.feed_clean(line, false, held);
  mismatches_.feed(line);
  return progress_.feed(line).has_value();
}

}  // namespace ptbuild
