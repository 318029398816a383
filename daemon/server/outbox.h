// What a server holds for one slow reader: bounded by the reader's own cap and by a budget that
// all readers of that server share, so no number of stopped clients grows the daemon's memory
// without bound. Used by the socket sessions and the web page's event streams alike.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace ptbuild {

class Outbox {
 public:
  Outbox(std::shared_ptr<size_t> shared_total, size_t own_cap, size_t shared_cap)
      : shared_total_(std::move(shared_total)), own_cap_(own_cap), shared_cap_(shared_cap) {}
  ~Outbox() { close(); }
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Queues `text`; false (and nothing queued) when either cap would be passed or it is closed.
  bool push(std::string text) {
    if (closed_ || bytes_ + text.size() > own_cap_ || *shared_total_ + text.size() > shared_cap_)
      return false;
    bytes_ += text.size();
    *shared_total_ += text.size();
    queue_.push_back(std::move(text));
    return true;
  }
  bool empty() const { return queue_.empty(); }
  // The next piece to write. It stays counted until written(): what is in flight is memory too.
  std::string take() {
    std::string front = std::move(queue_.front());
    queue_.pop_front();
    return front;
  }
  void written(size_t n) {
    if (closed_) return;
    bytes_ -= n;
    *shared_total_ -= n;
  }
  // Forgets everything; later pushes fail.
  void close() {
    if (closed_) return;
    closed_ = true;
    *shared_total_ -= bytes_;
    bytes_ = 0;
    queue_.clear();
    ready_ = nullptr;
  }
  size_t bytes() const { return bytes_; }
  size_t shared_bytes() const { return *shared_total_; }

  // Channel::when_drained: `ready` is handed back by take_ready() once at most `low_water` bytes
  // are queued.
  void when_drained(size_t low_water, std::function<void()> ready) {
    low_water_ = low_water;
    ready_ = std::move(ready);
  }
  std::function<void()> take_ready() {
    if (closed_ || !ready_ || bytes_ > low_water_) return nullptr;
    return std::exchange(ready_, nullptr);
  }

 private:
  std::shared_ptr<size_t> shared_total_;
  size_t own_cap_, shared_cap_;
  std::deque<std::string> queue_;
  size_t bytes_ = 0;
  bool closed_ = false;
  size_t low_water_ = 0;
  std::function<void()> ready_;
};

}  // namespace ptbuild
