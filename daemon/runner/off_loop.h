// Runs blocking pieces of work (git, nix eval) on threads of their own and hands each result to a
// callback on the event loop, so that the loop never waits for them. The owner's destruction
// waits for the threads still running (their callbacks are then never called: the loop has
// stopped), so no thread outlives what it posts to.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace ptbuild {

class OffLoop {
 public:
  // inline_for_tests: the work runs at once on the caller's thread and its callback is posted, so
  // a unit test that drives the loop by hand (io.poll()) sees the result in the same turn.
  enum class Mode { threads, inline_for_tests };
  explicit OffLoop(boost::asio::io_context& io, Mode mode = Mode::threads) : io_(io), mode_(mode) {}
  ~OffLoop() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return running_ == 0; });
  }
  OffLoop(const OffLoop&) = delete;
  OffLoop& operator=(const OffLoop&) = delete;

  template <class Work, class Done>
  void run(Work work, Done done) {
    if (mode_ == Mode::inline_for_tests) {
      boost::asio::post(io_,
                        [done = std::move(done), result = work()]() mutable { done(std::move(result)); });
      return;
    }
    {
      std::lock_guard lock(mutex_);
      ++running_;
    }
    std::thread([this, work = std::move(work), done = std::move(done),
                 guard = boost::asio::make_work_guard(io_)]() mutable {
      auto result = work();
      boost::asio::post(
          io_, [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
      guard.reset();
      std::lock_guard lock(mutex_);
      --running_;
      idle_.notify_all();  // under the lock: the owner cannot go before this thread is done with it
    }).detach();
  }

 private:
  boost::asio::io_context& io_;
  Mode mode_;
  std::mutex mutex_;
  std::condition_variable idle_;
  int running_ = 0;
};

}  // namespace ptbuild
