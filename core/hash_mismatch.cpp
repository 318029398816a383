#include "core/hash_mismatch.h"

#include <algorithm>

#include "core/diagnosis.h"
#include "core/text.h"

namespace ptbuild {
namespace {

// The text between the first pair of single quotes after `marker`, if the line has the marker.
std::optional<std::string> quoted_after(std::string_view line, std::string_view marker) {
  size_t at = line.find(marker);
  if (at == std::string_view::npos) return std::nullopt;
  size_t open = line.find('\'', at + marker.size());
  if (open == std::string_view::npos) return std::string();
  size_t close = line.find('\'', open + 1);
  if (close == std::string_view::npos) return std::string();
  return std::string(line.substr(open + 1, close - open - 1));
}

// "label: value" -> value, when the trimmed line starts with the label.
std::optional<std::string> field(std::string_view line, std::string_view label) {
  if (!line.starts_with(label)) return std::nullopt;
  return std::string(trim(line.substr(label.size())));
}

}  // namespace

void HashMismatchCollector::feed(std::string_view raw_line) {
  // Nearly every line of a build log is none of this: passed over without a copy.
  if (!current_ && raw_line.find("hash mismatch in ") == std::string_view::npos) return;
  std::string clean = strip_ansi(raw_line);
  std::string_view line = trim(clean);
  auto header = quoted_after(line, "hash mismatch in fixed-output derivation");
  auto download = header ? std::nullopt : quoted_after(line, "hash mismatch in file downloaded from");
  if (header || download) {
    current_ = HashMismatch{header.value_or(""), download.value_or(""), "", "", "", ""};
    current_recorded_ = false;
    return;
  }
  if (!current_) return;
  HashMismatch& m = *current_;
  if (auto v = field(line, "specified:"))
    m.specified = *v;
  else if (auto v2 = field(line, "wanted:"))
    m.specified = *v2;
  else if (auto v3 = field(line, "got path:"))
    m.got_path = *v3;
  else if (auto v4 = field(line, "got:"))
    m.got = *v4;
  else if (auto v5 = field(line, "likely URL:"))
    m.url = *v5;
  else if (auto v6 = field(line, "expected path:"))
    m.expected_path = *v6;
  else {
    if (!line.empty()) current_.reset();  // anything else ends the block
    return;
  }
  if (m.specified.empty() || m.got.empty()) return;
  // Complete: record it once (a log may repeat a mismatch); Lix's later lines update it.
  if (!current_recorded_) {
    auto same = std::find_if(done_.begin(), done_.end(), [&](const HashMismatch& d) {
      return d.drv == m.drv && d.specified == m.specified && d.got == m.got;
    });
    current_index_ = static_cast<size_t>(same - done_.begin());
    if (same == done_.end()) done_.push_back(m);
    current_recorded_ = true;
  }
  done_[current_index_] = m;
}

std::vector<HashMismatch> parse_hash_mismatches(std::string_view log) {
  HashMismatchCollector c;
  size_t start = 0;
  while (start <= log.size()) {
    size_t nl = log.find('\n', start);
    c.feed(log.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return c.mismatches();
}

}  // namespace ptbuild
