// The one clock the daemon reads for what it decides (timeouts, back-off, ETAs, retries) and
// for the times it records. Injected, so that tests move a fake clock instead of waiting.
#pragma once

#include <chrono>
#include <string>

namespace ptbuild {

class Clock {
 public:
  using Steady = std::chrono::steady_clock::time_point;
  using Wall = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual Steady steady() const = 0;  // for intervals: never jumps
  virtual Wall wall() const = 0;      // for the times people read
  std::string rfc3339() const;        // wall() as recorded: "2026-11-21T23:19:52.123Z"
};

// The machine's clocks (daemon/clock.cpp).
Clock& system_clock();

// A clock that moves only when told: for tests.
class ManualClock final : public Clock {
 public:
  ManualClock() : steady_(std::chrono::steady_clock::now()), wall_(std::chrono::system_clock::now()) {}
  Steady steady() const override { return steady_; }
  Wall wall() const override { return wall_; }
  template <class Duration>
  void advance(Duration d) {
    steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }

 private:
  Steady steady_;
  Wall wall_;
};

}  // namespace ptbuild
