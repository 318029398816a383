// Garbage collection through Nix's own GC (docs/resources.md). ptbuild keeps each good build's
// output as an indirect GC root, <state_dir>/roots/<job>; the retention policy
// (core/gc_policy.h) decides which roots go, and `nix-store --gc` collects what nothing roots
// any more. Blocking (nix-store runs for seconds to minutes): off the event loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "core/gc_policy.h"
#include "core/replies.h"

namespace ptbuild {

// `nix-store` beside the `nix` the backend uses.
std::string nix_store_program(const std::string& nix);

// Roots `out` for `job` (nix-store --add-root); "" or why not.
std::string add_build_root(const std::string& nix_store, const std::string& roots_dir, int64_t job,
                           const std::string& out);

// Drops the roots `plan` lets go, then collects at most `max_free` bytes; a dry run changes
// nothing and says what would go. Throws std::runtime_error with nix-store's message.
protocol::GcReply collect_garbage(const std::string& nix_store, const std::string& roots_dir,
                                  const GcPlan& plan, uint64_t max_free, bool dry_run);

// collect_garbage's result or nix-store's message, for a caller off the loop that reports it.
struct GcOutcome {
  std::optional<protocol::GcReply> reply;
  std::string error;
};
GcOutcome try_collect_garbage(const std::string& nix_store, const std::string& roots_dir, const GcPlan& plan,
                              uint64_t max_free, bool dry_run);

// Bytes freed by collections since the daemon started (ptbuild_gc_freed_bytes_total), here and
// on remote builders.
uint64_t gc_freed_total();
void count_freed(uint64_t bytes);

}  // namespace ptbuild
