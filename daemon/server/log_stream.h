// `ptbuild log JOB [--tail N] [-f]`: sends a job's log to one client as "log" events, then the
// job. What is on disk is read in pieces as fast as the client takes them; with follow, what the
// build prints from then on is pushed as it comes, and the reply comes when the job ends. A client
// that stops reading never makes the daemon hold more than a window of bytes for it: it falls
// behind and later catches up from the file, which has everything within a second.
#pragma once

#include <cstdint>
#include <memory>

#include "core/job.h"
#include "daemon/log_reader.h"

namespace ptbuild {

class Channel;
class Scheduler;
class Store;

class LogStream : public std::enable_shared_from_this<LogStream> {
 public:
  static constexpr size_t kWindow = 1024 * 1024;  // bytes a client may have unread

  LogStream(Scheduler& scheduler, Store& store, std::shared_ptr<Channel> channel, int64_t request_id, Job job,
            int64_t tail_lines, bool follow);
  void start();

 private:
  enum class State { reading, live, behind, waiting, done };
  void pump();
  void at_disk_end();
  bool on_live_output(std::string_view chunk);
  bool on_job(const Job& job);
  void finish(const Job& job);
  void send_text(std::string_view text);

  Scheduler& scheduler_;
  Store& store_;
  std::shared_ptr<Channel> channel_;
  int64_t request_id_;
  Job job_;
  bool follow_;
  LogReader reader_;
  LogCursor cursor_;
  State state_ = State::reading;
  int attached_attempt_ = 0;  // the attempt whose live output we listen to
  uint64_t live_sent_ = 0;    // bytes pushed live since the cursor's place
  uint64_t discard_ = 0;      // bytes to drop when reading again what was pushed live
  bool job_ended_ = false;
};

}  // namespace ptbuild
