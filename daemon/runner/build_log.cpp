#include "daemon/runner/build_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ptbuild {

BuildLog::~BuildLog() { close(); }

std::string BuildLog::open(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) return "cannot open log " + path + ": " + std::strerror(errno);
  return "";
}

void BuildLog::write_file(std::string_view bytes) {
  while (fd_ >= 0 && !bytes.empty() && !error_) {
    ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      disk_full_ = errno == ENOSPC || errno == EDQUOT;
      error_ = std::string("cannot write the build log: ") + std::strerror(errno);
      return;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void BuildLog::write(std::string_view bytes) {
  seen_ += bytes.size();
  if (written_head_ < head_cap_) {
    size_t n = std::min(bytes.size(), head_cap_ - written_head_);
    write_file(bytes.substr(0, n));
    written_head_ += n;
    bytes.remove_prefix(n);
  }
  if (bytes.empty()) return;
  // Past the head: keep only the newest tail_cap_ bytes, in a ring.
  if (bytes.size() >= tail_cap_) {
    dropped_ += tail_.size() + bytes.size() - tail_cap_;
    tail_.assign(bytes.substr(bytes.size() - tail_cap_));
    tail_start_ = 0;
    return;
  }
  if (tail_.size() < tail_cap_) {
    size_t room = tail_cap_ - tail_.size();
    tail_.append(bytes.substr(0, room));
    bytes.remove_prefix(std::min(room, bytes.size()));
  }
  while (!bytes.empty()) {  // overwrite the oldest bytes
    size_t n = std::min(bytes.size(), tail_cap_ - tail_start_);
    std::memcpy(tail_.data() + tail_start_, bytes.data(), n);
    tail_start_ = (tail_start_ + n) % tail_cap_;
    dropped_ += n;
    bytes.remove_prefix(n);
  }
}

void BuildLog::close() {
  if (fd_ < 0) return;
  if (!tail_.empty()) {
    if (dropped_ > 0) {
      std::string marker = "\n[ptbuild: " + std::to_string(dropped_) + " bytes of log left out here]\n";
      write_file(marker);
    }
    write_file(std::string_view(tail_).substr(tail_start_));
    write_file(std::string_view(tail_).substr(0, tail_start_));
  }
  ::close(fd_);
  fd_ = -1;
  tail_.clear();
}

}  // namespace ptbuild
