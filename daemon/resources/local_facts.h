// This machine's facts for the scheduler (docs/resources.md): /proc/meminfo, the cores this
// process may run on, statvfs of the store and of the build directory, /proc/pressure/memory.
// Blocking file reads: off the event loop.
#pragma once

#include <optional>

#include "core/resources.h"

namespace ptbuild {

std::optional<MachineFacts> read_local_facts();

}  // namespace ptbuild
