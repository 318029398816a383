// One clock for every running build's output looks. Waking the daemon costs more than the bytes
// a look finds (core/look_pace.h): with a timer of its own, each of 32 builds woke the daemon 5 to
// 40 times a second, and with them quiet that was the daemon's whole idle CPU. So the builds due
// within kTogether of the earliest are looked at in the same wakeup, a little early, and builds
// paced alike stay together: N builds cost one wakeup a tick, not N.
//
// The looks of one tick run one per turn of the event loop (each posts the next), so that a
// request that comes meanwhile waits for one look at most, not for all of them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include <boost/asio/steady_timer.hpp>

namespace ptbuild {

class LookClock {
 public:
  using Clock = std::chrono::steady_clock;
  // One look: does it, and says when the next is wanted (nullopt: no more, the looker is gone).
  using Look = std::function<std::optional<Clock::time_point>()>;
  static constexpr std::chrono::milliseconds kTogether{25};

  explicit LookClock(boost::asio::io_context& io);
  LookClock(const LookClock&) = delete;
  LookClock& operator=(const LookClock&) = delete;

  // A new looker, first looked at `when`. Returns its id.
  uint64_t add(Look look, Clock::time_point when);
  // Moves its next look to `when` (sooner or later); nothing if it is gone.
  void look_at(uint64_t id, Clock::time_point when);
  void remove(uint64_t id);
  size_t size() const { return lookers_.size(); }
  // Times the clock woke the loop for looks, since it was made.
  uint64_t wakeups() const { return wakeups_; }

 private:
  struct Looker {
    Look look;
    Clock::time_point due;
  };
  void arm();
  void tick();
  void take_turn();

  boost::asio::io_context& io_;
  boost::asio::steady_timer timer_;
  std::map<uint64_t, Looker> lookers_;
  std::vector<uint64_t> turns_;  // the lookers of this tick not looked at yet, the next last
  bool in_turns_ = false;
  std::optional<Clock::time_point> armed_for_;
  uint64_t next_id_ = 1;
  uint64_t wakeups_ = 0;
};

}  // namespace ptbuild
