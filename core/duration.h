// Durations as the config and the client spell them: "6h", "30m", "45s", "1h30m", "500ms", "2d".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ptbuild {

using Millis = std::chrono::milliseconds;

std::optional<Millis> parse_duration(std::string_view text);
std::string format_duration(Millis d);  // the shortest exact spelling: "6h", "1h30m", "500ms"

}  // namespace ptbuild
