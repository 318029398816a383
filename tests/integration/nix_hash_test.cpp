// Our hash spellings against real Nix's own conversions (nix hash to-sri / to-base32, nix-hash).
#include <random>
#include <sstream>

#include <doctest/doctest.h>

#include "core/hash.h"
#include "tests/support/harness.h"

using namespace ptbuild;
using namespace ptbuild::testing;

namespace {
std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<std::string> nix(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"nix", "--extra-experimental-features", "nix-command"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv[0] = "/usr/bin/nix";
  ProcessResult r = run_process(argv, {.env = nix_test_env()});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return lines(r.out);
}
}  // namespace

TEST_CASE("hash spellings agree with real Nix for sha256 and sha512") {
  std::mt19937 rng(20261121);
  for (HashAlgo algo : {HashAlgo::sha256, HashAlgo::sha512}) {
    std::string type(algo_name(algo));
    std::vector<Hash> hashes;
    std::vector<std::string> hex;
    for (int i = 0; i < 16; ++i) {
      Hash h{algo, {}};
      for (size_t b = 0; b < digest_size(algo); ++b) h.bytes.push_back(static_cast<uint8_t>(rng()));
      hashes.push_back(h);
      hex.push_back(format_hash(h, HashSpelling::hex));
    }
    std::vector<std::string> args{"hash", "to-sri", "--type", type};
    args.insert(args.end(), hex.begin(), hex.end());
    std::vector<std::string> sri = nix(args);
    args[1] = "to-base32";
    std::vector<std::string> nix32 = nix(args);
    REQUIRE(sri.size() == hashes.size());
    REQUIRE(nix32.size() == hashes.size());
    for (size_t i = 0; i < hashes.size(); ++i) {
      CHECK(format_hash(hashes[i], HashSpelling::sri) == sri[i]);
      CHECK(format_hash(hashes[i], HashSpelling::nix32) == nix32[i]);
      CHECK(parse_hash(sri[i])->hash == hashes[i]);
      CHECK(parse_hash(nix32[i], algo)->hash == hashes[i]);
    }
    // And nix-hash, the older tool, back from nix32 to hex.
    ProcessResult back = run_process({"/usr/bin/nix-hash", "--type", type, "--to-base16", nix32[0]});
    CHECK(lines(back.out).at(0) == hex[0]);
  }
}
