#include "core/duration.h"

#include <array>
#include <cctype>

namespace ptbuild {
namespace {

struct Unit {
  std::string_view suffix;
  long long ms;
};
// Longest suffix first so that "ms" is not read as "m".
constexpr std::array<Unit, 5> kUnits{
    {{"ms", 1}, {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}}};

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text == "0") return Millis{0};
  long long total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits_start = i;
    long long value = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      value = value * 10 + (text[i] - '0');
      if (value > 1'000'000'000LL) return std::nullopt;
      ++i;
    }
    if (i == digits_start) return std::nullopt;
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits)
      if (text.substr(i).starts_with(u.suffix)) {
        unit = &u;
        break;
      }
    if (!unit) return std::nullopt;
    i += unit->suffix.size();
    total += value * unit->ms;
  }
  return Millis{total};
}

std::string format_duration(Millis d) {
  long long ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  for (const Unit& u : {kUnits[1], kUnits[2], kUnits[3], kUnits[4], kUnits[0]}) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms) + std::string(u.suffix);
      ms %= u.ms;
    }
  }
  return out;
}

namespace {
struct SizeUnit {
  std::string_view suffix;
  uint64_t bytes;
};
constexpr std::array<SizeUnit, 8> kSizeUnits{{{"TiB", uint64_t{1} << 40},
                                              {"GiB", uint64_t{1} << 30},
                                              {"MiB", uint64_t{1} << 20},
                                              {"KiB", uint64_t{1} << 10},
                                              {"TB", 1'000'000'000'000},
                                              {"GB", 1'000'000'000},
                                              {"MB", 1'000'000},
                                              {"kB", 1'000}}};
}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    value = value * 10 + static_cast<uint64_t>(text[i] - '0');
    if (value > 1'000'000'000'000ULL) return std::nullopt;
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string_view unit = text.substr(i);
  if (unit.empty() || unit == "B") return value;
  for (const SizeUnit& u : kSizeUnits)
    if (unit == u.suffix) return value * u.bytes;
  return std::nullopt;
}

std::string format_size(uint64_t bytes) {
  for (const SizeUnit& u : {kSizeUnits[0], kSizeUnits[1], kSizeUnits[2], kSizeUnits[3]})
    if (bytes >= u.bytes && bytes % u.bytes == 0)
      return std::to_string(bytes / u.bytes) + std::string(u.suffix);
  return std::to_string(bytes);
}

}  // namespace ptbuild
