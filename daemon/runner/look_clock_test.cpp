#include "daemon/runner/look_clock.h"

#include <unistd.h>

#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <doctest/doctest.h>

using namespace ptbuild;
using namespace std::chrono_literals;
using Clock = LookClock::Clock;

TEST_CASE("look clock: builds due near each other are looked at in one wakeup, each at its pace") {
  boost::asio::io_context io;
  LookClock clock(io);
  constexpr int kBuilds = 8, kLooks = 5;
  int looks[kBuilds] = {};
  auto start = Clock::now();
  for (int b = 0; b < kBuilds; ++b)
    clock.add(
        [&, b]() -> std::optional<Clock::time_point> {
          if (++looks[b] == kLooks) return std::nullopt;
          return Clock::now() + 50ms;
        },
        start + 10ms + std::chrono::milliseconds(b));
  io.run_for(5s);  // returns once every looker is done
  for (int b = 0; b < kBuilds; ++b) CHECK(looks[b] == kLooks);
  CHECK(clock.size() == 0);
  // 40 looks in 5 wakeups: the 8 builds started within 8 ms of each other and stay together
  // (twice that allows for a loaded machine that splits a tick now and then).
  INFO("wakeups: ", clock.wakeups());
  CHECK(clock.wakeups() <= 2 * kLooks);
  // The earliest look of a tick is never sooner than asked.
  CHECK(Clock::now() - start >= 10ms + (kLooks - 1) * 50ms);
}

TEST_CASE("look clock: a request that comes during a tick waits for one look, not for all") {
  boost::asio::io_context io;
  LookClock clock(io);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  boost::asio::posix::stream_descriptor request(io, fds[0]);
  std::string order;
  request.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [&](const boost::system::error_code&) { order += 'R'; });
  for (int b = 0; b < 8; ++b)
    clock.add(
        [&, b]() -> std::optional<Clock::time_point> {
          if (b == 0) CHECK(::write(fds[1], "x", 1) == 1);  // a client asks, during the first look
          order += std::to_string(b);
          return std::nullopt;
        },
        Clock::now());
  io.run_for(5s);
  ::close(fds[1]);
  REQUIRE(order.size() == 9);
  CAPTURE(order);
  // Answered after at most two looks of the eight due (the loop polls between turns).
  CHECK(order.find('R') <= 2);
}

TEST_CASE("look clock: a look brought forward comes at once, and a removed looker is not looked at") {
  boost::asio::io_context io;
  LookClock clock(io);
  int soon = 0, gone = 0;
  uint64_t soon_id = clock.add(
      [&]() -> std::optional<Clock::time_point> {
        ++soon;
        return std::nullopt;
      },
      Clock::now() + 1h);
  uint64_t gone_id = clock.add(
      [&]() -> std::optional<Clock::time_point> {
        ++gone;
        return std::nullopt;
      },
      Clock::now() + 1ms);
  clock.remove(gone_id);
  clock.look_at(soon_id, Clock::now());
  auto start = Clock::now();
  io.run_for(5s);
  CHECK(soon == 1);
  CHECK(gone == 0);
  CHECK(Clock::now() - start < 1s);  // not the hour it was first due in
}
