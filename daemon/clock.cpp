// The machine's clocks, behind core/clock.h's seam.
#include "core/clock.h"

namespace ptbuild {

namespace {
class SystemClock final : public Clock {
 public:
  Steady steady() const override { return std::chrono::steady_clock::now(); }
  Wall wall() const override { return std::chrono::system_clock::now(); }
};
}  // namespace

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

}  // namespace ptbuild
