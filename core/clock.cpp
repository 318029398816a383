#include "core/clock.h"

#include "core/text.h"

namespace ptbuild {

std::string Clock::rfc3339() const {
  return format_rfc3339(wall());
}

}  // namespace ptbuild
