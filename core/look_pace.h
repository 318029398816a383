// How often the runner looks at a build's output pipe. Looking is what costs: measured under 32
// builds printing through Nix (~0.4 MB/s each), nearly all of the daemon's CPU per look was the
// look itself (timer, wakeup, reads, caches found cold), not the bytes. So each build is looked
// at as seldom as its pace allows: every look aims to find `aim` bytes (half the pipe, so that a
// flooding build never waits on a full one), within kSoonest..kLatest (kLatest keeps `log -f`
// and the log on disk within the second they promise).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace ptbuild {

class LookPace {
 public:
  static constexpr std::chrono::milliseconds kSoonest{25};
  static constexpr std::chrono::milliseconds kLatest{200};

  explicit LookPace(size_t aim) : aim_(aim) {}

  // `taken` bytes were found since the last paced look, which came `every()` after the one
  // before: the wait until the next, at the pace they came.
  std::chrono::milliseconds next(size_t taken) {
    double scale = static_cast<double>(aim_) / static_cast<double>(std::max<size_t>(taken, 1));
    auto aimed = std::chrono::milliseconds(
        static_cast<long>(std::min(scale, 1000.0) * static_cast<double>(every_.count())));
    every_ = std::clamp(aimed, kSoonest, kLatest);
    return every_;
  }
  std::chrono::milliseconds every() const { return every_; }

 private:
  size_t aim_;
  std::chrono::milliseconds every_ = kSoonest;  // a new build is looked at soon: it may flood
};

}  // namespace ptbuild
