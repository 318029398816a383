// Durations as the config and the client spell them: "6h", "30m", "45s", "1h30m", "500ms", "2d";
// and sizes.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ptbuild {

using Millis = std::chrono::milliseconds;

std::optional<Millis> parse_duration(std::string_view text);
std::string format_duration(Millis d);  // the shortest exact spelling: "6h", "1h30m", "500ms"

// Sizes as the config spells them: "4GiB", "512MiB", "64KiB", "100MB", "1000" (bytes).
std::optional<uint64_t> parse_size(std::string_view text);
std::string format_size(uint64_t bytes);  // the shortest exact spelling in binary units: "4GiB"

}  // namespace ptbuild
