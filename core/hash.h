// Nix hashes and their spellings (docs/hash-repair.md): SRI ("sha256-<base64>"), Nix's base-32 ("nix32",
// its own alphabet and bit order), hex, and the "sha256:" prefixed forms of each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptbuild {

enum class HashAlgo { md5, sha1, sha256, sha512 };

struct Hash {
  HashAlgo algo = HashAlgo::sha256;
  std::vector<uint8_t> bytes;
  bool operator==(const Hash&) const = default;
  bool is_zero() const;  // lib.fakeHash, sha256-AAAA…=, all-zero nix32 or hex
};

enum class HashSpelling {
  sri,              // sha256-LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=
  nix32,            // 1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s
  hex,              // 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
  base64,           // LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=
  prefixed_nix32,   // sha256:1b8m…
  prefixed_hex,     // sha256:2c26…
  prefixed_base64,  // sha256:LCa0…
};

std::string_view algo_name(HashAlgo a);
size_t digest_size(HashAlgo a);

struct ParsedHash {
  Hash hash;
  HashSpelling spelling;
};

// Reads a hash in any spelling. A bare nix32/hex/base64 string needs `default_algo` to know its
// length; SRI and prefixed spellings carry their own.
std::optional<ParsedHash> parse_hash(std::string_view text, HashAlgo default_algo = HashAlgo::sha256);
std::string format_hash(const Hash& hash, HashSpelling spelling);

// The spellings a recipe may use for this hash, each once (for finding it in files).
std::vector<std::pair<HashSpelling, std::string>> spellings_of(const Hash& hash);

// Codecs, exposed for tests.
std::string to_nix32(const std::vector<uint8_t>& bytes);
std::optional<std::vector<uint8_t>> from_nix32(std::string_view text, size_t size);
std::string to_base64(const std::vector<uint8_t>& bytes);
std::optional<std::vector<uint8_t>> from_base64(std::string_view text);

}  // namespace ptbuild
