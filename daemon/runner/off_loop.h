// Runs a blocking piece of work (git, a file walk) on a thread of its own and hands its result
// to a callback on the event loop, so that the loop never waits for it. io.run() waits for the
// answer (a work guard), so the callback always runs.
#pragma once

#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace ptbuild {

template <class Work, class Done>
void run_off_loop(boost::asio::io_context& io, Work work, Done done) {
  auto guard = boost::asio::make_work_guard(io);
  std::thread([&io, work = std::move(work), done = std::move(done), guard = std::move(guard)]() mutable {
    auto result = work();
    boost::asio::post(io, [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
  }).detach();
}

}  // namespace ptbuild
