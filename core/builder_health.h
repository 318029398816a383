// Whether a builder takes builds (docs/fleet.md). A failure that is the machine's fault (Nix cannot
// build there, its disk is full) takes it down for a back-off that grows with each such failure
// in a row; when the back-off is over a small probe build decides whether it is back. Pure: the
// scheduler owns the clock and the probe.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace ptbuild {

struct BuilderHealth {
  using Time = std::chrono::system_clock::time_point;

  int faults = 0;                  // machine faults in a row; a build that ends otherwise resets it
  std::optional<Time> down_until;  // set while it takes no builds
  std::string reason;              // the last fault, in words
  bool checking = false;           // a probe build runs before the first build (at start)

  bool up() const { return !down_until && !checking; }

  // base × 3^(faults−1), at most one hour (1 min, 3 min, 9 min, 27 min, 1 h, 1 h …).
  static std::chrono::milliseconds backoff(int faults, std::chrono::milliseconds base);

  // A machine fault: down until now + backoff.
  void fault(std::string why, Time now, std::chrono::milliseconds base);
  // The probe build succeeded: it takes builds again (the fault count stays, so a fault the
  // probe cannot see — a sandbox that hides only the recipes' builder — backs off longer).
  void probe_succeeded() {
    down_until.reset();
    checking = false;
  }
  // A build on it ended for a reason that is not the machine's, or an operator said resume.
  void healthy() {
    down_until.reset();
    checking = false;
    faults = 0;
    reason.clear();
  }
  // "up", "checking …", or "down until 2026-11-30T17:00:00.000Z: <reason>"
  std::string describe() const;
};

}  // namespace ptbuild
