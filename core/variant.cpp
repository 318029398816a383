#include "core/variant.h"

#include <cctype>
#include <vector>

namespace ptbuild {
namespace {

std::vector<std::string_view> split_dashes(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dash = s.find('-', start);
    parts.push_back(s.substr(start, dash == std::string_view::npos ? s.npos : dash - start));
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  return parts;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

bool starts_with_then_digits(std::string_view token, std::string_view prefix) {
  return token.starts_with(prefix) && all_digits(token.substr(prefix.size()));
}

// "python313" -> "3.13", "python39" -> "3.9".
std::optional<std::string> python_version(std::string_view token) {
  if (!starts_with_then_digits(token, "python")) return std::nullopt;
  std::string_view digits = token.substr(6);
  if (digits.size() < 2) return std::nullopt;
  return std::string(digits.substr(0, 1)) + "." + std::string(digits.substr(1));
}

// "cuda13_0" -> "13_0".
std::optional<std::string> cuda_version(std::string_view token) {
  if (!token.starts_with("cuda")) return std::nullopt;
  std::string_view v = token.substr(4);
  size_t us = v.find('_');
  if (us == v.npos || !all_digits(v.substr(0, us)) || !all_digits(v.substr(us + 1))) return std::nullopt;
  return std::string(v);
}

// "sm90", "sm120", "sm90a" (arch-specific feature set).
bool is_gpu_arch_token(std::string_view token) {
  if (!token.starts_with("sm") || token.size() < 4) return false;
  std::string_view rest = token.substr(2);
  if (!rest.empty() && std::isalpha(static_cast<unsigned char>(rest.back()))) rest.remove_suffix(1);
  return all_digits(rest);
}

std::string join(const std::vector<std::string_view>& parts, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (!out.empty()) out += '-';
    out += parts[i];
  }
  return out;
}

}  // namespace

std::string platform_of_isa(std::string_view isa) {
  return isa.starts_with("armv") || isa == "neon" || isa.starts_with("sve") ? "aarch64-linux"
                                                                            : "x86_64-linux";
}

bool is_isa_token(std::string_view t) {
  if (t.starts_with("avx") || t.starts_with("sse")) {
    for (char c : t)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
  }
  if (t.starts_with("armv")) {
    // armv8_2, armv9, and the armv8.2 spelling some hand-made files use.
    std::string_view v = t.substr(4);
    if (v.empty() || !std::isdigit(static_cast<unsigned char>(v[0]))) return false;
    for (char c : v)
      if (!std::isdigit(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != 'a') return false;
    return true;
  }
  return t == "neon" || t == "sve" || t == "sve2" || starts_with_then_digits(t, "x86_64_v");
}

VariantAxes parse_variant_name(std::string_view name) {
  const std::vector<std::string_view> parts = split_dashes(name);
  size_t py = 0;
  while (py < parts.size() && !python_version(parts[py])) ++py;
  if (py == 0 || py >= parts.size()) return {};

  VariantAxes axes;
  axes.family = join(parts, 0, py);
  if (axes.family->empty() || axes.family->front() == '-') return {};
  axes.python = python_version(parts[py]);
  size_t next = py + 1;
  auto at = [&](size_t i) -> std::string_view { return i < parts.size() ? parts[i] : ""; };

  if (auto cuda = cuda_version(at(next)); cuda && is_gpu_arch_token(at(next + 1))) {
    axes.cuda = cuda;
    axes.gpu_arch = std::string(at(next + 1));
    next += 2;
  } else if (at(next) == "cpu") {
    next += 1;
  } else if (at(next) == "darwin" && at(next + 1) == "mps") {
    axes.platform = "darwin";
    next += 2;
  } else {
    return {};  // no recognisable accelerator: an unknown pattern
  }

  if (std::string_view isa = at(next); !axes.platform && is_isa_token(isa)) {
    axes.isa = std::string(isa);
    axes.platform = platform_of_isa(isa);
    next += 1;
  }
  if (next < parts.size()) axes.extra = join(parts, next, parts.size());
  return axes;
}

std::string axes_key(const VariantAxes& a) {
  auto part = [](const std::optional<std::string>& v) { return v.value_or("-"); };
  return part(a.python) + "|" + part(a.cuda) + "|" + part(a.gpu_arch) + "|" + part(a.isa) + "|" +
         part(a.extra) + "|" + part(a.platform);
}

std::optional<std::string> VariantAxes::torch_arch_flag() const {
  if (!gpu_arch) return std::nullopt;
  return "sm_" + gpu_arch->substr(2);
}

std::optional<std::string> VariantAxes::cuda_dotted() const {
  if (!cuda) return std::nullopt;
  std::string v = *cuda;
  for (char& c : v)
    if (c == '_') c = '.';
  return v;
}

}  // namespace ptbuild
