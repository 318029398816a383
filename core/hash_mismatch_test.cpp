#include "core/hash_mismatch.h"

#include <doctest/doctest.h>

#include "tests/support/temp_dir.h"

using namespace ptbuild;

namespace {
std::vector<HashMismatch> fixture(const char* name) {
  return parse_hash_mismatches(
      testing::read_file(std::string(PTBUILD_SOURCE_DIR) + "/tests/fixtures/hash-mismatch/" + name));
}
constexpr const char* kGot = "sha256-FnESNirbOyBBwR9zN0N4cvnYIeV+jD7daNh6HQur0PU=";
constexpr const char* kZero = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
}  // namespace

TEST_CASE("hash mismatch: Nix 2.3 wanted/got in nix32 naming the output path") {
  auto m = fixture("nix-2.3.log");
  REQUIRE(m.size() == 1);
  CHECK(m[0].drv == "/nix/store/zx1sbxwqjk6g8p7cc3v2wdpnyx8j1m4v-source");
  CHECK(m[0].specified == "sha256:0000000000000000000000000000000000000000000000000000");
  CHECK(m[0].got == "sha256:1xfhmc5isynqd3fkx33ywlhxiybjg11kfwqzq50j0fyv58v14w8n");
}

TEST_CASE("hash mismatch: Nix 2.4+ specified/got in SRI") {
  auto m = fixture("nix-2.18.log");
  REQUIRE(m.size() == 1);
  CHECK(m[0].drv == "/nix/store/a9pl4b3jxj927f06ygfs1h1kx32b7pam-source.drv");
  CHECK(m[0].specified == "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  CHECK(m[0].got == kGot);
}

TEST_CASE("hash mismatch: Lix with likely URL and the paths") {
  auto m = fixture("lix.log");
  REQUIRE(m.size() == 1);
  CHECK(m[0].url == "https://github.com/pytorch/pytorch/archive/v2.10.0.tar.gz");
  CHECK(m[0].specified == kZero);
  CHECK(m[0].got == kGot);
  CHECK(m[0].expected_path == "/nix/store/4ch5d1m0ynp2s7b2a2wxbwlxfa6k5h93-source");
  CHECK(m[0].got_path == "/nix/store/9i2n5gl5h1bwvhrjv0l0kmwjx5idxq3r-source");
}

TEST_CASE("hash mismatch: ANSI colour codes inside the hashes") {
  auto m = fixture("ansi.log");
  REQUIRE(m.size() == 1);
  CHECK(m[0].drv == "/nix/store/a9pl4b3jxj927f06ygfs1h1kx32b7pam-source.drv");
  CHECK(m[0].specified == kZero);
  CHECK(m[0].got == kGot);
}

TEST_CASE("hash mismatch: several in one log with --keep-going") {
  auto m = fixture("keep-going.log");
  REQUIRE(m.size() == 2);
  CHECK(m[0].drv.ends_with("magma-cuda13.patch.drv"));
  CHECK(m[1].drv.ends_with("-source.drv"));
  CHECK(m[1].specified == kZero);
}

TEST_CASE("hash mismatch: a file downloaded by a fetcher") {
  auto m = fixture("downloaded.log");
  REQUIRE(m.size() == 1);
  CHECK(m[0].drv.empty());
  CHECK(m[0].url == "https://download.pytorch.org/whl/cpu/torch-2.10.0-cp313-linux_x86_64.whl");
  CHECK(m[0].got == "sha256:1xfhmc5isynqd3fkx33ywlhxiybjg11kfwqzq50j0fyv58v14w8n");
}

TEST_CASE("hash mismatch: a log without one, and the same one twice") {
  CHECK(parse_hash_mismatches("error: builder for '/nix/store/x.drv' failed with exit code 1\n").empty());
  std::string twice =
      testing::read_file(std::string(PTBUILD_SOURCE_DIR) + "/tests/fixtures/hash-mismatch/nix-2.18.log");
  CHECK(parse_hash_mismatches(twice + twice).size() == 1);
}
