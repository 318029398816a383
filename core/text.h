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
// The length of the well-formed UTF-8 character at text[i] (1-4), or 0 when the bytes there are
// not one (a stray byte, a cut or overlong sequence, a surrogate).
size_t utf8_char_length(std::string_view text, size_t i);
// `text` with every byte that is not part of a well-formed character replaced by U+FFFD.
std::string valid_utf8(std::string_view text);

}  // namespace ptbuild
