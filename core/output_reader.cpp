#include "core/output_reader.h"

namespace ptbuild {

bool OutputReader::feed(std::string_view chunk) {
  bool progressed = false;
  lines_.feed(chunk, [&](std::string_view line) { progressed |= read_line(line); });
  return progressed;
}

void OutputReader::finish() {
  lines_.finish([&](std::string_view line) { read_line(line); });
}

bool OutputReader::read_line(std::string_view raw) {
  std::string_view line = strip_ansi(raw, stripped_);
  // ninja's status lines, nearly all of a long build's: read once, for progress only.
  if (std::optional<Progress> counts = ninja_status(line)) {
    scanner_.feed_clean(line, true);
    return progress_.feed_status(*counts, line).has_value();
  }
  scanner_.feed_clean(line, false);
  mismatches_.feed(line);
  return progress_.feed(line).has_value();
}

}  // namespace ptbuild
