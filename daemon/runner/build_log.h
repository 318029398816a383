// A build's log file: everything it prints, as it comes, up to a cap that keeps the head (the
// configuration: CUDA found or not) and the tail (the failure) of a 200 MB PyTorch log.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ptbuild {

class BuildLog {
 public:
  static constexpr size_t kDefaultHead = 64 * 1024 * 1024;
  static constexpr size_t kDefaultTail = 16 * 1024 * 1024;

  explicit BuildLog(size_t head_cap = kDefaultHead, size_t tail_cap = kDefaultTail)
      : head_cap_(head_cap), tail_cap_(tail_cap) {}
  ~BuildLog();
  BuildLog(const BuildLog&) = delete;
  BuildLog& operator=(const BuildLog&) = delete;

  // Opens for appending (a retry appends to the same job's log). Returns an error or "".
  std::string open(const std::string& path);
  void write(std::string_view bytes);
  // Writes the kept tail (after a marker of what was left out) and closes.
  void close();

  size_t bytes_seen() const { return seen_; }
  // The first write error ("No space left on device"), if any: the build is then failed.
  const std::optional<std::string>& write_error() const { return error_; }
  bool disk_full() const { return disk_full_; }

 private:
  void write_file(std::string_view bytes);

  size_t head_cap_;
  size_t tail_cap_;
  int fd_ = -1;
  size_t seen_ = 0;
  size_t written_head_ = 0;
  std::string tail_;  // ring of the newest bytes once the head is full
  size_t tail_start_ = 0;
  size_t dropped_ = 0;
  std::optional<std::string> error_;
  bool disk_full_ = false;
};

}  // namespace ptbuild
