// Build progress from log lines (docs/failures.md): ninja's "[123/4567]" and Nix's derivation counts.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ptbuild {

struct Progress {
  int64_t done = 0;
  int64_t total = 0;
  bool operator==(const Progress&) const = default;
};

// ninja's status line, "[N/M] …" right after Nix's "name> " prefix (if any): its counts.
std::optional<Progress> ninja_status(std::string_view line);

// Fed every line of a build's output; tells the progress whenever it changes. Ninja's counts,
// once seen, win over Nix's derivation counts: they are what moves during a 2-hour build.
class ProgressTracker {
 public:
  std::optional<Progress> feed(std::string_view line);
  // feed() for a line whose ninja_status() is `counts`, without reading it again.
  std::optional<Progress> feed_status(Progress counts, std::string_view line);
  std::optional<Progress> current() const;

 private:
  std::optional<Progress> ninja_;
  int64_t drv_total_ = 0;
  int64_t drv_started_ = 0;
};

}  // namespace ptbuild
