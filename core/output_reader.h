// What the daemon reads out of a running build's output, in one pass over each line as it
// streams: the failure classifier, the hash mismatch reader and the progress parser. A line is
// cleaned of terminal escapes once for all three, and ninja's status lines ("[N/M] Building …",
// nearly all of a PyTorch log) are recognised once and passed over by the readers that never
// find anything in one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/diagnosis.h"
#include "core/hash_mismatch.h"
#include "core/line_splitter.h"
#include "core/progress.h"

namespace ptbuild {

class OutputReader {
 public:
  explicit OutputReader(VariantAxes axes) : scanner_(std::move(axes)) {}

  // A chunk of output as it came (lines may span chunks). True when the progress changed.
  bool feed(std::string_view chunk);
  // The output ended: its last line, if it had no newline.
  void finish();

  const LogScanner& scanner() const { return scanner_; }
  const std::vector<HashMismatch>& mismatches() const { return mismatches_.mismatches(); }
  std::optional<Progress> progress() const { return progress_.current(); }

 private:
  // `in_chunk`: the line lies in the chunk being fed (not gathered across chunks); `plain`: it
  // has no escape or carriage return to strip.
  bool read_line(std::string_view raw, bool in_chunk, bool plain);

  LineSplitter lines_;
  LogScanner scanner_;
  HashMismatchCollector mismatches_;
  ProgressTracker progress_;
  std::string stripped_;  // strip_ansi's buffer
};

}  // namespace ptbuild
