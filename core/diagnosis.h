// Why a build failed (docs/failures.md), read from its log as it streams by.
//
// The first real cause wins: a log fails once, then cascades ("error: 1 dependencies of
// derivation … failed to build", "ninja: build stopped"), and those later lines say nothing new.
// Signatures are matched on lines with ANSI colour codes stripped.
#pragma once

#include <array>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "core/job.h"
#include "core/variant.h"

namespace ptbuild {

namespace failure_class {
inline constexpr const char* kHashMismatch = "hash_mismatch";
inline constexpr const char* kCudaNotFound = "cuda_not_found";
inline constexpr const char* kUnknownCudaArch = "unknown_cuda_arch";
inline constexpr const char* kUnsupportedGpuArch = "unsupported_gpu_arch";
inline constexpr const char* kOutOfMemory = "out_of_memory";
inline constexpr const char* kDiskFull = "disk_full";
inline constexpr const char* kEvalError = "eval_error";
inline constexpr const char* kNetwork = "network";
inline constexpr const char* kTimeout = "timeout";
inline constexpr const char* kCancelled = "cancelled";
inline constexpr const char* kVerifyFailed = "verify_failed";
inline constexpr const char* kNixSetup = "nix_setup";  // Nix itself cannot build on this machine
// The recipe's parts were written for other versions of each other (CUDA 13's removed APIs, a
// patch for another source): what changed since the last good build explains it best.
inline constexpr const char* kVersionSkew = "version_skew";
inline constexpr const char* kBuilderFailed = "builder_failed";
inline constexpr const char* kPublishFailed = "publish_failed";  // a publish job (docs/publishing.md)
}  // namespace failure_class

std::string strip_ansi(std::string_view s);
// The same without a copy for the common line that has no escape code: `line` itself, else the
// stripped text in `buffer`. Every line of a 200 MB log passes here.
std::string_view strip_ansi(std::string_view line, std::string& buffer);

// A failure that is the machine's fault, not the recipe's (Nix cannot build there, or its disk is
// full): the job goes back to the queue and the builder stops taking builds for a while.
bool is_machine_fault(const Failure& failure);
// A machine fault no recipe can cause: the builder cannot be reached, or refuses a system it
// claims. Never counted against the job (core/build_verdict.h's circuit breaker).
bool only_the_machine(const Failure& failure);

// A failure that may not happen again with the same inputs (docs/nightly.md): network, timeout,
// out_of_memory, disk_full, nix_setup. Any other is the recipe's, and repeats until it changes.
bool is_transient(const std::string& failure_class);

// The failure a helper command's whole output shows (an evaluation, a probe), classified as a
// build's log would be; builder_failed with its first error line when nothing else matches.
Failure diagnose_text(std::string_view output, int exit_code);

class LogScanner {
 public:
  explicit LogScanner(VariantAxes axes) : axes_(std::move(axes)) {}

  void feed(std::string_view line);  // one line, without its newline
  // The same for a line already stripped of escapes and classified (OutputReader does it once for
  // every reader of the line). A `held` line stays where it is until settle(): the scanner keeps
  // a view of it instead of a copy.
  void feed_clean(std::string_view line, bool ninja_status, bool held = false);
  // The held lines are about to go: copies what the scanner keeps of them (its last few lines).
  // Copying every line into the ring as it came was a fifth of the readers' time on a 200 MB
  // log; a chunk of 64 KiB holds hundreds of lines and the ring keeps 15.
  void settle();

  // The failure of a build that exited with `exit_code` (0 too: CUDA silently off in a GPU
  // variant fails a build that "succeeded"). nullopt: a successful build with nothing wrong.
  std::optional<Failure> diagnose(int exit_code) const;

  // The last lines seen, for the excerpt of a failure found elsewhere (timeout, cancel).
  std::string tail() const;

 private:
  struct Hit {
    std::string failure_class;
    std::string message;
    std::string hint;
    std::deque<std::string> excerpt;
    int lines_after = 0;         // still to add to the excerpt
    bool retry_warning = false;  // Nix's "…; retrying in N ms": its final error may follow
  };
  std::optional<Hit> match(std::string_view line) const;

  std::deque<std::string> recent_lines() const;
  // " (in magma-2.9.0, a dependency: not torch itself)" when the first derivation that failed is
  // not the build's own; "" otherwise.
  std::string dependency_note() const;

  VariantAxes axes_;
  std::optional<Hit> first_;
  // The last lines, for context and for builder_failed: a ring whose strings keep their storage
  // (clipped), but where held_[i]: then, until settle(), the line is held_line_[i].
  std::array<std::string, 15> recent_;
  std::array<bool, 15> held_{};
  std::array<std::string_view, 15> held_line_;
  size_t recent_next_ = 0, recent_count_ = 0;
  std::string first_error_line_;
  std::string first_failed_drv_;  // "magma-2.9.0": Nix's first "builder for '…' failed"
  std::string stripped_;          // strip_ansi's buffer
};

}  // namespace ptbuild
