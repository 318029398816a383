// A build's log file: everything it prints, compressed with zstd as it comes (the format Nix and
// Hydra use for build logs too) and on disk within a second: each second's output (or each
// kFrameBytes of it) is a zstd frame of its own, so a crash loses at most the last second,
// `zstd -dc` reads the file at any time, and a retry appends its own frames to the same file.
//
// A frame is compressed in one call when it closes, by one compressor that every log of the
// thread shares: frames share no history, so logs need none of their own. Measured under 32
// flooding builds, 32 streaming compressors (273 KiB of tables and buffers each) kept one another
// out of the cache, and compressing ran at half the speed it has alone.
//
// A disk guard (daemon.log_max, compressed bytes) keeps a giant log's head in the file and its
// tail in two rotating segments beside it (<path>.tail.<n>); read_log() puts them together.
//
// While an attempt runs, its text is also plain in <id>.live.log (live_path()), for an operator's
// `tail -f`: a compressed stream cannot be followed with the usual tools. The build appends its
// output to that file itself (BuildCommand::output) and the runner reads it back into take(); the
// daemon's own lines (write()) go there too. It is removed when the attempt ends (close(), or
// by the caller after close_leaving_live()); the zstd log has everything.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ptbuild {

class BuildLog {
 public:
  static constexpr uint64_t kDefaultMax = uint64_t{4} << 30;  // 4 GiB compressed: ~40 GB of log
  // A frame is closed once it is kFrameAge old, by the write that finds it so or by the caller's
  // check every kFlushCheck: with the runner's looks at most 200 ms apart, a line is on disk at
  // most a second after the build printed it.
  static constexpr auto kFrameAge = std::chrono::milliseconds(600);
  static constexpr auto kFlushCheck = std::chrono::milliseconds(200);
  // ...or once it holds this much text: what a build's log holds in memory at most.
  static constexpr size_t kFrameBytes = 128 * 1024;

  explicit BuildLog(uint64_t max_bytes = kDefaultMax);
  ~BuildLog();
  BuildLog(const BuildLog&) = delete;
  BuildLog& operator=(const BuildLog&) = delete;

  // Opens for appending (a retry appends to the same job's log), closing as a frame of its own
  // what a crash left of an unfinished frame at its end. Never follows a symlink. Returns an
  // error or "".
  // A job's first attempt never appends to a file already there (a log of another job whose id
  // was given again after the database was lost, or anything planted in its place): that is
  // moved aside to <path>.stale-<time> first.
  enum class Attempt { first, retry };
  std::string open(const std::string& path, Attempt attempt = Attempt::retry);
  // The daemon's own text: into the log and the plain live file.
  void write(std::string_view bytes);
  // What a build printed, read back from the live file it appends to: into the log only.
  void take(std::string_view bytes);
  const std::string& live_path() const { return live_path_; }
  // While a process appends to the live file, the daemon's own lines go into the log only:
  // written into the file too, they would be read back as the process's.
  void process_appends(bool appends) { process_appends_ = appends; }
  // A process's own writes to the live file fail where the daemon cannot see them (Nix goes on
  // without the lines a full disk refused, or stops). So while it appends, the live file's file
  // system is looked at as its output is taken (and by the caller when a build failed: it may
  // have stopped on its refused lines), and with less than kMinRoom free the log has a write
  // error of its own (disk_full()): the build printed with the disk full.
  // Not by allocating room ahead of the build (fallocate): that takes the file's inode lock,
  // which the build holds while it writes, and a build runs at the lowest priority: measured
  // under 32 flooding builds, the event loop waited up to 37 ms for a preempted build's write.
  static constexpr uint64_t kMinRoom = 256 * 1024;
  void check_room();
  // Bytes every build log of this process has taken since it started (GET /metrics).
  static uint64_t bytes_taken_total();
  // Closes the current frame, so that everything written so far is on disk and readable.
  void flush();
  // flush() if the frame is kFrameAge old: write() does it itself, a quiet build needs the
  // caller's timer. Each log's frames end on its own clock, not all builds' in one go.
  void flush_if_due();
  bool pending() const { return frame_open_; }
  // Closes the log and removes the plain live file.
  void close();
  // Closes the log and moves the plain live file aside (<live>.ended) for the caller to remove:
  // its path, or "" when there is none (Scheduler::finish removes it with
  // remove_at_build_priority). Moved, so that the job's next attempt, which may start before the
  // caller has removed it, gets a live file of its own.
  std::string close_leaving_live();

  uint64_t bytes_seen() const { return seen_; }
  uint64_t bytes_on_disk() const { return file_bytes_ + segment_bytes_total_; }
  // The first write error ("No space left on device"), if any: the build is then failed.
  const std::optional<std::string>& write_error() const { return error_; }
  bool disk_full() const { return disk_full_; }
  // Where open() moved a file that was in the way, or "".
  const std::string& moved_aside() const { return stale_; }

 private:
  void write_frame(std::string_view text);
  void write_out(std::string_view compressed);
  void write_fd(int fd, std::string_view bytes);
  void next_segment();
  void write_live(std::string_view bytes);

  uint64_t max_bytes_;
  std::string path_;
  std::string stale_;
  int fd_ = -1;          // the log file: the head of a giant log
  int segment_fd_ = -1;  // the current tail segment, once the head is full
  int segment_ = 0;      // its number
  int live_fd_ = -1;     // the plain live file of the running attempt, for tail -f
  std::string live_path_;
  bool process_appends_ = false;
  uint64_t next_room_check_ = 0;  // bytes seen when the room is looked at next
  uint64_t file_bytes_ = 0;
  uint64_t segment_bytes_ = 0;
  uint64_t segment_bytes_total_ = 0;
  bool compressed_ = false;  // false: a plain log of an older ptbuild's job, appended to as it is
  std::string frame_;        // the open frame's text, compressed and copied when it closes
  bool frame_open_ = false;
  std::chrono::steady_clock::time_point frame_started_{};
  uint64_t seen_ = 0;
  std::optional<std::string> error_;
  bool disk_full_ = false;
};

}  // namespace ptbuild
