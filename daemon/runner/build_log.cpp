#include "daemon/runner/build_log.h"

#include <algorithm>
#include <atomic>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include <zstd.h>

#include "daemon/log_reader.h"

namespace ptbuild {
namespace {

// Fast: a build log is text that compresses well even at zstd's fast levels (about 18× at -1,
// 26× at 1), and the daemon must keep up with 32 builds printing as fast as they can: -1
// compresses at ~1.2 GB/s a core here, 1 at ~0.7 (bench/log_path.cpp).
constexpr int kLevel = -1;

bool compressed_name(const std::string& path) {
  return path.ends_with(".zst");
}

// A 32 KiB window: build logs repeat within a few lines, and a reader needs no more memory.
constexpr int kWindowLog = 15;

// The thread's compressor, shared by its logs: a frame is compressed in one call.
class FrameCompressor {
 public:
  FrameCompressor() : cctx_(ZSTD_createCCtx()) {
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, kLevel);
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_windowLog, kWindowLog);
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
  }
  ~FrameCompressor() { ZSTD_freeCCtx(cctx_); }
  FrameCompressor(const FrameCompressor&) = delete;
  FrameCompressor& operator=(const FrameCompressor&) = delete;

  // The text as one zstd frame (valid until the next call), or the error.
  std::string_view compress(std::string_view text, std::string& error) {
    out_.resize(std::max(out_.size(), ZSTD_compressBound(text.size())));
    size_t n = ZSTD_compress2(cctx_, out_.data(), out_.size(), text.data(), text.size());
    if (ZSTD_isError(n)) {
      error = std::string("cannot compress the build log: ") + ZSTD_getErrorName(n);
      return {};
    }
    return {out_.data(), n};
  }

 private:
  ZSTD_CCtx* cctx_;
  std::vector<char> out_;
};

FrameCompressor& frame_compressor() {
  thread_local FrameCompressor compressor;
  return compressor;
}

// <dir>/<id>.log.zst -> <dir>/<id>.live.log
std::string live_name(const std::string& path) {
  std::string base = path.substr(0, path.size() - 4);  // without ".zst"
  if (base.ends_with(".log")) base.resize(base.size() - 4);
  return base + ".live.log";
}

// The length of the file's leading run of complete zstd frames, and the text of the unfinished
// frame a crash may have left after them (its complete blocks): that frame is cut, and its text
// written again as a frame of its own, so that frames appended after it can be read.
uint64_t complete_frames_length(int fd, std::string& unfinished_text) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size == 0) return 0;
  std::string data(static_cast<size_t>(st.st_size), '\0');
  if (::pread(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) return 0;
  uint64_t at = 0;
  while (at < data.size()) {
    size_t n = ZSTD_findFrameCompressedSize(data.data() + at, data.size() - at);
    if (ZSTD_isError(n)) {
      unfinished_text = decode_zstd(std::string_view(data).substr(at));
      break;
    }
    at += n;
  }
  return at;
}

}  // namespace

BuildLog::BuildLog(uint64_t max_bytes) : max_bytes_(max_bytes) {}

BuildLog::~BuildLog() {
  close();
}

std::string BuildLog::open(const std::string& path, Attempt attempt) {
  path_ = path;
  struct stat st {};
  if (attempt == Attempt::first && ::lstat(path.c_str(), &st) == 0) {
    std::string aside = path + ".stale-" + std::to_string(::time(nullptr));
    if (::rename(path.c_str(), aside.c_str()) != 0)
      return "cannot move the old " + path + " aside: " + std::strerror(errno);
    stale_ = aside;
  }
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd_ < 0) return "cannot open log " + path + ": " + std::strerror(errno);
  // The attempt's own live file: what a crash left there is not this attempt's.
  live_path_ = live_name(path);
  live_fd_ =
      ::open(live_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (live_fd_ < 0) return "cannot open " + live_path_ + ": " + std::strerror(errno);
  if (!compressed_name(path)) {
    file_bytes_ = static_cast<uint64_t>(::lseek(fd_, 0, SEEK_END));
    return "";
  }
  std::string salvaged;
  file_bytes_ = complete_frames_length(fd_, salvaged);
  if (::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0)
    return "cannot cut log " + path + ": " + std::strerror(errno);
  segment_ = last_log_segment(path);
  compressed_ = true;
  if (!salvaged.empty()) write_frame(salvaged);  // the previous attempt's, not this one's
  return "";
}

namespace {
std::atomic<uint64_t> all_bytes_taken{0};  // written by the loop, read by /metrics on the loop too
}

uint64_t BuildLog::bytes_taken_total() {
  return all_bytes_taken.load(std::memory_order_relaxed);
}

void BuildLog::write(std::string_view bytes) {
  if (!process_appends_) write_live(bytes);
  take(bytes);
}

void BuildLog::take(std::string_view bytes) {
  // Looked at every kMinRoom / 2 of output, the first byte too (fstatvfs sums the file system's
  // counters: per 64 KiB chunk it was 3% of the daemon's CPU under 32 flooding builds).
  if (process_appends_ && seen_ >= next_room_check_) {
    check_room();
    next_room_check_ = seen_ + kMinRoom / 2;
  }
  seen_ += bytes.size();
  all_bytes_taken.fetch_add(bytes.size(), std::memory_order_relaxed);
  if (!compressed_) {  // a plain log of an older ptbuild's job
    write_fd(fd_, bytes);
    file_bytes_ += bytes.size();
    return;
  }
  if (!frame_open_) {
    frame_open_ = true;
    frame_started_ = std::chrono::steady_clock::now();
    // A new frame goes to the log file while its head has room, else to a tail segment.
    if (file_bytes_ >= max_bytes_ / 2 && (segment_fd_ < 0 || segment_bytes_ >= max_bytes_ / 4))
      next_segment();
  }
  frame_.append(bytes);
  if (frame_.size() >= kFrameBytes)
    flush();
  else
    flush_if_due();
}

// fstatvfs reads the file system's counters: no lock that a build's write holds.
void BuildLog::check_room() {
  struct statvfs fs {};
  if (live_fd_ < 0 || error_ || ::fstatvfs(live_fd_, &fs) != 0) return;
  if (static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize >= kMinRoom) return;
  disk_full_ = true;
  error_ = "cannot write the build log: " + std::string(std::strerror(ENOSPC)) + " (" + live_path_ +
           ": the build printed with no room left for its lines)";
}

void BuildLog::flush_if_due() {
  if (frame_open_ && std::chrono::steady_clock::now() - frame_started_ >= kFrameAge) flush();
}

// The daemon's lines in the plain live file: best effort, it is not the log (an error only ends
// them there).
void BuildLog::write_live(std::string_view bytes) {
  while (live_fd_ >= 0 && !bytes.empty()) {
    ssize_t n = ::write(live_fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(live_fd_);
      live_fd_ = -1;
      return;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void BuildLog::flush() {
  if (!frame_open_) return;
  frame_open_ = false;
  write_frame(frame_);
  frame_.clear();
}

void BuildLog::write_frame(std::string_view text) {
  if (text.empty()) return;
  std::string error;
  std::string_view frame = frame_compressor().compress(text, error);
  if (!error.empty() && !error_) error_ = error;
  write_out(frame);
}

void BuildLog::write_out(std::string_view compressed) {
  if (compressed.empty()) return;
  if (segment_fd_ >= 0) {
    write_fd(segment_fd_, compressed);
    segment_bytes_ += compressed.size();
    segment_bytes_total_ += compressed.size();
  } else {
    write_fd(fd_, compressed);
    file_bytes_ += compressed.size();
  }
}

void BuildLog::write_fd(int fd, std::string_view bytes) {
  while (fd >= 0 && !bytes.empty() && !error_) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      disk_full_ = errno == ENOSPC || errno == EDQUOT;
      error_ = std::string("cannot write the build log: ") + std::strerror(errno);
      return;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// The head is full: the tail goes to segments <path>.tail.<n>, of which the newest two stay, so
// the end of the log is always on disk and the log never takes more than ~log_max.
void BuildLog::next_segment() {
  if (segment_fd_ >= 0) ::close(segment_fd_);
  ++segment_;
  std::string name = log_segment_path(path_, segment_);
  segment_fd_ = ::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (segment_fd_ < 0 && !error_) error_ = "cannot open log " + name + ": " + std::strerror(errno);
  segment_bytes_ = 0;
  std::error_code ignored;
  if (segment_ > 2) std::filesystem::remove(log_segment_path(path_, segment_ - 2), ignored);
}

void BuildLog::close() {
  std::string live = close_leaving_live();
  if (!live.empty()) ::unlink(live.c_str());
}

std::string BuildLog::close_leaving_live() {
  if (fd_ < 0) return "";
  if (compressed_) flush();
  ::close(fd_);
  fd_ = -1;
  if (segment_fd_ >= 0) ::close(segment_fd_);
  segment_fd_ = -1;
  if (live_fd_ >= 0) ::close(live_fd_);
  live_fd_ = -1;
  compressed_ = false;
  std::string().swap(frame_);
  std::string live = std::exchange(live_path_, "");
  if (live.empty()) return "";
  std::string ended = live + ".ended";
  return ::rename(live.c_str(), ended.c_str()) == 0 ? ended : live;
}

}  // namespace ptbuild
