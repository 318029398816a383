// A Channel whose lines wait in an Outbox and are written by one writer coroutine: the socket's
// sessions and the web page's event streams are both this, on different sockets.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "daemon/server/channel.h"
#include "daemon/server/outbox.h"

namespace ptbuild {

class QueuedChannel : public Channel {
 public:
  QueuedChannel(const boost::asio::any_io_executor& executor, std::shared_ptr<size_t> shared_total,
                size_t own_cap, size_t shared_cap)
      : outbox_(std::move(shared_total), own_cap, shared_cap), wake_writer_(executor) {}

  bool is_open() const override { return open_; }
  size_t backlog() const override { return outbox_.bytes(); }
  void when_drained(size_t low_water, std::function<void()> ready) override {
    outbox_.when_drained(low_water, std::move(ready));
    notify_drained();
  }

  // Forgets what is queued and closes the socket; later sends are dropped.
  void close() {
    if (!open_) return;
    open_ = false;
    outbox_.close();
    close_socket();
    wake_writer_.cancel();
  }

 protected:
  virtual void close_socket() = 0;

  // Queues the text `make_text()` returns for the writer; it is only made while the channel is
  // open (serializing what a closed channel drops cost a stopped reader's every log chunk). Past a
  // cap the reader is too slow: `too_slow(unread, all)` says so and the channel closes rather
  // than hold more.
  template <class MakeText>
  void enqueue(MakeText&& make_text, const std::function<void(size_t unread, size_t all)>& too_slow) {
    if (!open_) return;
    std::string text = make_text();
    size_t size = text.size();
    if (!outbox_.push(std::move(text))) {
      too_slow(outbox_.bytes() + size, outbox_.shared_bytes());
      close();
      return;
    }
    wake_writer_.cancel();
  }

  // Writes what is queued, in order, until the channel closes, or until `finished()` holds with
  // nothing left to write.
  template <class Stream>
  boost::asio::awaitable<void> write_queued(Stream& stream, std::function<bool()> finished) {
    constexpr auto use_nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
    while (open_) {
      if (outbox_.empty()) {
        if (finished()) break;
        wake_writer_.expires_at(boost::asio::steady_timer::time_point::max());
        co_await wake_writer_.async_wait(use_nothrow);
        continue;
      }
      std::string data = outbox_.take();
      auto [ec, n] = co_await boost::asio::async_write(stream, boost::asio::buffer(data), use_nothrow);
      outbox_.written(data.size());
      if (ec) break;
      notify_drained();
    }
    close();
  }

 private:
  void notify_drained() {
    if (auto ready = outbox_.take_ready()) boost::asio::post(wake_writer_.get_executor(), std::move(ready));
  }

  Outbox outbox_;
  boost::asio::steady_timer wake_writer_;
  bool open_ = true;
};

}  // namespace ptbuild
