// Cuts a stream of output chunks into lines. The complete lines of a chunk are handed on where
// they lie (no copy: a build's log is hundreds of megabytes); only a line that spans chunks is
// gathered. A line that grows past `max_line` without an end is handed on as it is and dropped.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ptbuild {

class LineSplitter {
 public:
  // Longer than any line a reader of build output looks for.
  static constexpr size_t kMaxLine = 64 * 1024;

  explicit LineSplitter(size_t max_line = kMaxLine) : max_line_(max_line) {}

  // Calls on_line(std::string_view) for each line the chunk completes, without its '\n'.
  template <class OnLine>
  void feed(std::string_view chunk, OnLine&& on_line) {
    if (!partial_.empty()) {
      size_t nl = chunk.find('\n');
      partial_.append(chunk.substr(0, nl));
      if (nl == std::string_view::npos) {
        chunk = {};
      } else {
        on_line(std::string_view(partial_));
        partial_.clear();
        chunk.remove_prefix(nl + 1);
      }
    }
    for (size_t nl; (nl = chunk.find('\n')) != std::string_view::npos; chunk.remove_prefix(nl + 1))
      on_line(chunk.substr(0, nl));
    partial_.append(chunk);
    if (partial_.size() > max_line_) {
      on_line(std::string_view(partial_));
      partial_.clear();
    }
  }

  // The output ended: its last line, if it had no '\n'.
  template <class OnLine>
  void finish(OnLine&& on_line) {
    if (partial_.empty()) return;
    on_line(std::string_view(partial_));
    partial_.clear();
  }

 private:
  std::string partial_;
  size_t max_line_;
};

}  // namespace ptbuild
