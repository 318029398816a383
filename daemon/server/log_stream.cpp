#include "daemon/server/log_stream.h"

#include <nlohmann/json.hpp>

#include "core/protocol.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/server/channel.h"
#include "daemon/store/store.h"

namespace ptbuild {

LogStream::LogStream(Scheduler& scheduler, Store& store, std::shared_ptr<Channel> channel, int64_t request_id,
                     Job job, int64_t tail_lines, bool follow)
    : scheduler_(scheduler),
      store_(store),
      channel_(std::move(channel)),
      request_id_(request_id),
      job_(std::move(job)),
      follow_(follow),
      reader_(job_.log_path) {
  if (tail_lines > 0) {
    scheduler_.flush_log(job_.id);
    cursor_ = reader_.tail_start(tail_lines);
  }
}

void LogStream::start() {
  if (follow_ && !is_finished(job_.state))
    scheduler_.listen_jobs([self = shared_from_this()](const Job& j) { return self->on_job(j); },
                           [self = weak_from_this()] {
                             auto s = self.lock();
                             return s && s->state_ != State::done && s->channel_->is_open();
                           });
  pump();
}

void LogStream::send_text(std::string_view text) {
  channel_->send(protocol::event(request_id_, "log", {{"text", text}}));
}

// Reads from the file while the client keeps up, at most a window's worth in one turn of the
// loop (a fast client of a giant log must not starve everyone else), and never for a channel
// that closed: a reader dropped as too slow has no backlog, and would otherwise be sent, for
// nothing, the rest of the log in one go.
void LogStream::pump() {
  state_ = State::reading;
  for (size_t read_this_turn = 0; read_this_turn < kWindow && channel_->backlog() < kWindow;) {
    if (!channel_->is_open()) {
      state_ = State::done;
      return;
    }
    bool at_end = false;
    std::string text = reader_.read(cursor_, kLogChunk, at_end);
    if (at_end) {
      // Put what the build printed so far on disk, and read that too before deciding.
      scheduler_.flush_log(job_.id);
      text += reader_.read(cursor_, kLogChunk, at_end);
    }
    if (discard_ > 0) {  // already pushed live before the client fell behind
      size_t drop = static_cast<size_t>(std::min<uint64_t>(discard_, text.size()));
      text.erase(0, drop);
      discard_ -= drop;
    }
    read_this_turn += text.size() + 1;  // +1: a turn of empty reads (all discarded) ends too
    if (!text.empty()) send_text(text);
    if (at_end && discard_ == 0) {
      at_disk_end();
      return;
    }
  }
  if (!channel_->is_open()) {
    state_ = State::done;
    return;
  }
  // Posted, not called: the next window is read in a later turn even when the client keeps up.
  channel_->when_drained(kWindow / 2, [self = shared_from_this()] { self->pump(); });
}

// Everything on disk was sent: end, or follow what the build prints from now on. Runs in the
// same turn of the event loop as the last read after the flush, so no output falls between.
void LogStream::at_disk_end() {
  if (!follow_) return finish(job_);
  std::optional<Job> now = store_.job(job_.id);
  if (!now || is_finished(now->state) || job_ended_) return finish(now.value_or(job_));
  if (!scheduler_.is_running(job_.id)) {
    state_ = State::waiting;  // queued (again): on_job() starts reading when it runs
    return;
  }
  state_ = State::live;
  live_sent_ = 0;
  if (attached_attempt_ != now->attempt) {
    attached_attempt_ = now->attempt;
    scheduler_.listen_output(
        job_.id, [self = shared_from_this()](std::string_view chunk) { return self->on_live_output(chunk); });
  }
}

bool LogStream::on_live_output(std::string_view chunk) {
  if (state_ == State::done || !channel_->is_open()) return false;
  if (state_ != State::live) return true;  // read from the file later
  if (channel_->backlog() > kWindow) {
    // Falls behind: stop holding output for it; when it has read, go on from the file.
    state_ = State::behind;
    discard_ = live_sent_;
    channel_->when_drained(kWindow / 2, [self = shared_from_this()] { self->pump(); });
    return true;
  }
  send_text(chunk);
  live_sent_ += chunk.size();
  return true;
}

bool LogStream::on_job(const Job& j) {
  if (state_ == State::done || !channel_->is_open()) return false;
  if (j.id != job_.id) return true;
  if (is_finished(j.state)) {
    job_ended_ = true;
    job_ = j;
    // Live, everything the build printed was pushed before it ended; else pump() ends it.
    if (state_ == State::live || state_ == State::waiting) finish(j);
    return false;
  }
  if (j.state == JobState::running && state_ == State::waiting) pump();
  return true;
}

void LogStream::finish(const Job& j) {
  state_ = State::done;
  if (channel_->is_open()) channel_->send(protocol::ok_reply(request_id_, {{"job", job_to_json(j)}}));
}

}  // namespace ptbuild
