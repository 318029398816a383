#include "core/hash.h"

#include <algorithm>
#include <array>

namespace ptbuild {
namespace {

constexpr std::string_view kNix32 = "0123456789abcdfghijklmnpqrsvwxyz";  // no e, o, u, t
constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::array<HashAlgo, 4> kAlgos{HashAlgo::md5, HashAlgo::sha1, HashAlgo::sha256, HashAlgo::sha512};

size_t nix32_length(size_t bytes) {
  return (bytes * 8 - 1) / 5 + 1;
}
size_t base64_length(size_t bytes) {
  return (bytes + 2) / 3 * 4;
}

std::optional<HashAlgo> algo_from(std::string_view name) {
  for (HashAlgo a : kAlgos)
    if (algo_name(a) == name) return a;
  return std::nullopt;
}

std::optional<std::vector<uint8_t>> from_hex(std::string_view text) {
  if (text.size() % 2) return std::nullopt;
  std::vector<uint8_t> out;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::string to_hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// A bare digest of `algo`: hex, nix32 or base64, told apart by length.
std::optional<ParsedHash> parse_bare(std::string_view text, HashAlgo algo, bool prefixed) {
  size_t size = digest_size(algo);
  if (text.size() == size * 2)
    if (auto b = from_hex(text))
      return ParsedHash{{algo, *b}, prefixed ? HashSpelling::prefixed_hex : HashSpelling::hex};
  if (text.size() == nix32_length(size))
    if (auto b = from_nix32(text, size))
      return ParsedHash{{algo, *b}, prefixed ? HashSpelling::prefixed_nix32 : HashSpelling::nix32};
  if (text.size() == base64_length(size))
    if (auto b = from_base64(text); b && b->size() == size)
      return ParsedHash{{algo, *b}, prefixed ? HashSpelling::prefixed_base64 : HashSpelling::base64};
  return std::nullopt;
}

}  // namespace

std::string_view algo_name(HashAlgo a) {
  switch (a) {
    case HashAlgo::md5:
      return "md5";
    case HashAlgo::sha1:
      return "sha1";
    case HashAlgo::sha256:
      return "sha256";
    case HashAlgo::sha512:
      return "sha512";
  }
  return "sha256";
}

size_t digest_size(HashAlgo a) {
  switch (a) {
    case HashAlgo::md5:
      return 16;
    case HashAlgo::sha1:
      return 20;
    case HashAlgo::sha256:
      return 32;
    case HashAlgo::sha512:
      return 64;
  }
  return 32;
}

bool Hash::is_zero() const {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// Nix's base-32: the digest read as one little-endian number, printed 5 bits at a time from the
// most significant end (libutil/hash.cc printHash32).
std::string to_nix32(const std::vector<uint8_t>& bytes) {
  size_t len = nix32_length(bytes.size());
  std::string out;
  out.reserve(len);
  for (size_t n = len; n-- > 0;) {
    size_t b = n * 5, i = b / 8, j = b % 8;
    unsigned c = bytes[i] >> j;
    if (i + 1 < bytes.size()) c |= static_cast<unsigned>(bytes[i + 1]) << (8 - j);
    out += kNix32[c & 0x1f];
  }
  return out;
}

std::optional<std::vector<uint8_t>> from_nix32(std::string_view text, size_t size) {
  if (text.size() != nix32_length(size)) return std::nullopt;
  std::vector<uint8_t> bytes(size, 0);
  for (size_t n = 0; n < text.size(); ++n) {
    size_t digit = kNix32.find(text[text.size() - n - 1]);
    if (digit == std::string_view::npos) return std::nullopt;
    size_t b = n * 5, i = b / 8, j = b % 8;
    bytes[i] |= static_cast<uint8_t>(digit << j);
    unsigned carry = static_cast<unsigned>(digit) >> (8 - j);
    if (i + 1 < size)
      bytes[i + 1] |= static_cast<uint8_t>(carry);
    else if (carry)
      return std::nullopt;  // bits beyond the digest: not a hash of this size
  }
  return bytes;
}

std::string to_base64(const std::vector<uint8_t>& bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint32_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint32_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= bytes[i + 2];
    out += kBase64[chunk >> 18 & 63];
    out += kBase64[chunk >> 12 & 63];
    out += i + 1 < bytes.size() ? kBase64[chunk >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? kBase64[chunk & 63] : '=';
  }
  return out;
}

std::optional<std::vector<uint8_t>> from_base64(std::string_view text) {
  if (text.size() % 4) return std::nullopt;
  std::vector<uint8_t> out;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t chunk = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        ++pad;
        chunk <<= 6;
        continue;
      }
      size_t v = kBase64.find(c);
      if (v == std::string_view::npos || pad) return std::nullopt;
      chunk = chunk << 6 | static_cast<uint32_t>(v);
    }
    out.push_back(static_cast<uint8_t>(chunk >> 16));
    if (pad < 2) out.push_back(static_cast<uint8_t>(chunk >> 8));
    if (pad < 1) out.push_back(static_cast<uint8_t>(chunk));
  }
  return out;
}

std::optional<ParsedHash> parse_hash(std::string_view text, HashAlgo default_algo) {
  if (size_t dash = text.find('-'); dash != std::string_view::npos) {
    auto algo = algo_from(text.substr(0, dash));
    if (!algo) return std::nullopt;
    auto bytes = from_base64(text.substr(dash + 1));
    if (!bytes || bytes->size() != digest_size(*algo)) return std::nullopt;
    return ParsedHash{{*algo, *bytes}, HashSpelling::sri};
  }
  if (size_t colon = text.find(':'); colon != std::string_view::npos) {
    auto algo = algo_from(text.substr(0, colon));
    if (!algo) return std::nullopt;
    return parse_bare(text.substr(colon + 1), *algo, true);
  }
  return parse_bare(text, default_algo, false);
}

std::string format_hash(const Hash& h, HashSpelling s) {
  std::string prefix = std::string(algo_name(h.algo));
  switch (s) {
    case HashSpelling::sri:
      return prefix + "-" + to_base64(h.bytes);
    case HashSpelling::nix32:
      return to_nix32(h.bytes);
    case HashSpelling::hex:
      return to_hex(h.bytes);
    case HashSpelling::base64:
      return to_base64(h.bytes);
    case HashSpelling::prefixed_nix32:
      return prefix + ":" + to_nix32(h.bytes);
    case HashSpelling::prefixed_hex:
      return prefix + ":" + to_hex(h.bytes);
    case HashSpelling::prefixed_base64:
      return prefix + ":" + to_base64(h.bytes);
  }
  return "";
}

std::vector<std::pair<HashSpelling, std::string>> spellings_of(const Hash& h) {
  // Longest first, so that a prefixed spelling is found as a whole and not as its bare tail.
  std::vector<std::pair<HashSpelling, std::string>> out;
  for (HashSpelling s :
       {HashSpelling::prefixed_hex, HashSpelling::prefixed_nix32, HashSpelling::prefixed_base64,
        HashSpelling::sri, HashSpelling::hex, HashSpelling::nix32, HashSpelling::base64})
    out.emplace_back(s, format_hash(h, s));
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
  return out;
}

}  // namespace ptbuild
