// Small text helpers shared by daemon and client.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptbuild {

using SystemTime = std::chrono::system_clock::time_point;

// RFC 3339 in UTC with milliseconds: "2026-11-21T23:19:52.123Z".
std::string format_rfc3339(SystemTime t);
std::optional<SystemTime> parse_rfc3339(std::string_view s);

std::string join(const std::vector<std::string>& items, std::string_view sep);
std::string_view trim(std::string_view s);
// The lines of `text` ("a\nb\n" -> "a", "b"), as views into it: it must outlive them.
std::vector<std::string_view> split_lines(std::string_view text);
void replace_all(std::string& s, const std::string& from, const std::string& to);

}  // namespace ptbuild
