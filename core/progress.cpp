#include "core/progress.h"

namespace ptbuild {
namespace {

// Not std::isdigit: it asks the locale, and this runs for every line of a 200 MB log.
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool read_number(std::string_view s, size_t& i, int64_t& out) {
  size_t start = i;
  out = 0;
  while (i < s.size() && is_digit(s[i]) && i - start < 12) out = out * 10 + (s[i++] - '0');
  return i > start;
}

// The first "[N/M]" in the line, ninja's status prefix (after Nix's "name> " prefix, if any).
std::optional<Progress> ninja_counts(std::string_view line) {
  for (size_t at = line.find('['); at != line.npos; at = line.find('[', at + 1)) {
    size_t i = at + 1;
    int64_t done, total;
    if (!read_number(line, i, done) || i >= line.size() || line[i] != '/') continue;
    ++i;
    if (!read_number(line, i, total) || i >= line.size() || line[i] != ']') continue;
    if (total > 0 && done <= total) return Progress{done, total};
  }
  return std::nullopt;
}

}  // namespace

std::optional<Progress> ninja_status(std::string_view line) {
  size_t prefix = line.substr(0, 122).find("> ");  // Nix's "name> ", never longer
  if (prefix != line.npos) line.remove_prefix(prefix + 2);
  if (line.size() < 6 || line[0] != '[') return std::nullopt;
  size_t i = 1;
  int64_t done, total;
  if (!read_number(line, i, done) || i >= line.size() || line[i] != '/') return std::nullopt;
  ++i;
  if (!read_number(line, i, total) || i + 1 >= line.size() || line[i] != ']' || line[i + 1] != ' ')
    return std::nullopt;
  return Progress{done, total};
}

std::optional<Progress> ProgressTracker::feed_status(Progress counts, std::string_view line) {
  if (counts.total <= 0 || counts.done > counts.total) return feed(line);  // not counts to show
  if (ninja_ == counts) return std::nullopt;
  ninja_ = counts;
  return counts;
}

std::optional<Progress> ProgressTracker::feed(std::string_view line) {
  if (auto n = ninja_counts(line)) {  // nearly every line of a long build: its own quick way
    if (n == ninja_) return std::nullopt;
    ninja_ = n;
    return n;
  }
  std::optional<Progress> before = current();
  if (line.starts_with("these ") && line.find(" derivations will be built") != line.npos) {
    size_t i = 6;
    int64_t total = 0;
    if (read_number(line, i, total)) drv_total_ = total;
  } else if (line.starts_with("this derivation will be built")) {
    drv_total_ = 1;
  } else if (line.starts_with("building '/nix/store/") && drv_total_ > 0) {
    if (drv_started_ < drv_total_) ++drv_started_;
  }
  std::optional<Progress> after = current();
  return after != before ? after : std::nullopt;
}

std::optional<Progress> ProgressTracker::current() const {
  if (ninja_) return ninja_;
  // A derivation counts as done once the next one starts building.
  if (drv_total_ > 0) return Progress{drv_started_ > 0 ? drv_started_ - 1 : 0, drv_total_};
  return std::nullopt;
}

}  // namespace ptbuild
