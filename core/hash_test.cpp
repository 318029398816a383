#include "core/hash.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
// sha256 of "hello2\n", as `nix hash file`, `nix hash file --base32` and sha256sum print it.
constexpr const char* kSri = "sha256-FnESNirbOyBBwR9zN0N4cvnYIeV+jD7daNh6HQur0PU=";
constexpr const char* kNix32 = "1xfhmc5isynqd3fkx33ywlhxiybjg11kfwqzq50j0fyv58v14w8n";
constexpr const char* kHex = "167112362adb3b2041c11f7337437872f9d821e57e8c3edd68d87a1d0babd0f5";
}  // namespace

TEST_CASE("hash spellings convert into each other") {
  auto sri = parse_hash(kSri);
  REQUIRE(sri);
  CHECK(sri->spelling == HashSpelling::sri);
  auto nix32 = parse_hash(kNix32);
  REQUIRE(nix32);
  CHECK(nix32->spelling == HashSpelling::nix32);
  auto hex = parse_hash(kHex);
  REQUIRE(hex);
  CHECK(hex->spelling == HashSpelling::hex);
  CHECK(sri->hash == nix32->hash);
  CHECK(sri->hash == hex->hash);
  CHECK(format_hash(hex->hash, HashSpelling::sri) == kSri);
  CHECK(format_hash(sri->hash, HashSpelling::nix32) == kNix32);
  CHECK(format_hash(sri->hash, HashSpelling::hex) == kHex);
  CHECK(format_hash(sri->hash, HashSpelling::prefixed_nix32) == std::string("sha256:") + kNix32);
  auto prefixed = parse_hash(std::string("sha256:") + kNix32);
  REQUIRE(prefixed);
  CHECK(prefixed->spelling == HashSpelling::prefixed_nix32);
  CHECK(prefixed->hash == sri->hash);
}

TEST_CASE("sha512 and other algorithms round-trip") {
  Hash h{HashAlgo::sha512, {}};
  for (int i = 0; i < 64; ++i) h.bytes.push_back(static_cast<uint8_t>(i * 37 + 11));
  for (HashSpelling s : {HashSpelling::sri, HashSpelling::prefixed_nix32, HashSpelling::prefixed_hex,
                         HashSpelling::prefixed_base64}) {
    auto back = parse_hash(format_hash(h, s));
    REQUIRE(back);
    CHECK(back->hash == h);
    CHECK(back->spelling == s);
  }
  CHECK(parse_hash(format_hash(h, HashSpelling::nix32), HashAlgo::sha512)->hash == h);
  CHECK(format_hash(h, HashSpelling::nix32).size() == 103);
  Hash sha1{HashAlgo::sha1, std::vector<uint8_t>(20, 0xab)};
  CHECK(parse_hash(format_hash(sha1, HashSpelling::sri))->hash == sha1);
}

TEST_CASE("zero hashes are recognised as fake") {
  CHECK(parse_hash("sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")->hash.is_zero());
  CHECK(parse_hash(std::string(52, '0'))->hash.is_zero());
  CHECK(parse_hash(std::string(64, '0'))->hash.is_zero());
  CHECK_FALSE(parse_hash(kSri)->hash.is_zero());
}

TEST_CASE("what is not a hash is refused") {
  for (const char* bad : {"", "sha256-", "sha256-abc", "md4-AAAA", "sha256:xyz", "not a hash",
                          "1xfhmc5isynqd3fkx33ywlhxiybjg11kfwqzq50j0fyv58v14w8e",   // 'e' is not nix32
                          "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"})  // overflows 256 bits
    CHECK_FALSE(parse_hash(bad));
}

TEST_CASE("every spelling of a hash, longest first") {
  auto spellings = spellings_of(parse_hash(kSri)->hash);
  CHECK(spellings.size() == 7);
  for (size_t i = 1; i < spellings.size(); ++i)
    CHECK(spellings[i - 1].second.size() >= spellings[i].second.size());
}
