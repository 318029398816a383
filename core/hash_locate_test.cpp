#include "core/hash_locate.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
const Hash kOld = parse_hash("sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=")->hash;
const Hash kNew = parse_hash("sha256-FnESNirbOyBBwR9zN0N4cvnYIeV+jD7daNh6HQur0PU=")->hash;

std::string repair_all(const std::string& text, const std::vector<HashOccurrence>& found) {
  std::vector<std::pair<HashOccurrence, std::string>> edits;
  for (const auto& o : found) edits.emplace_back(o, replacement_for(o, kNew));
  return apply_replacements(text, edits);
}
}  // namespace

TEST_CASE("a real hash is found in every spelling and rewritten in the same one") {
  std::string text =
      "src = fetchurl {\n"
      "  hash = \"" +
      format_hash(kOld, HashSpelling::sri) +
      "\";\n"
      "  sha256 = \"" +
      format_hash(kOld, HashSpelling::nix32) +
      "\";\n"
      "  outputHash = \"" +
      format_hash(kOld, HashSpelling::hex) +
      "\";\n"
      "  other = \"" +
      format_hash(kOld, HashSpelling::prefixed_nix32) +
      "\";\n"
      "};\n";
  auto found = find_hash(text, kOld);
  REQUIRE(found.size() == 4);
  CHECK(found[0].line == 2);
  CHECK(found[0].spelling == HashSpelling::sri);
  CHECK(found[1].spelling == HashSpelling::nix32);
  CHECK(found[2].spelling == HashSpelling::hex);
  CHECK(found[3].spelling == HashSpelling::prefixed_nix32);
  std::string repaired = repair_all(text, found);
  CHECK(repaired.find(format_hash(kNew, HashSpelling::sri)) != std::string::npos);
  CHECK(repaired.find(format_hash(kNew, HashSpelling::nix32)) != std::string::npos);
  CHECK(repaired.find(format_hash(kNew, HashSpelling::hex)) != std::string::npos);
  CHECK(repaired.find(format_hash(kNew, HashSpelling::prefixed_nix32)) != std::string::npos);
  CHECK(find_hash(repaired, kOld).empty());
}

TEST_CASE("a hash inside a longer token is not the hash") {
  std::string hex = format_hash(kOld, HashSpelling::hex);
  CHECK(find_hash("x = \"" + hex + "ff\";", kOld).empty());
  CHECK(find_hash("x = \"aa" + hex + "\";", kOld).empty());
}

TEST_CASE("fake hashes in all their forms become SRI") {
  std::string text =
      "a = { hash = lib.fakeHash; };\n"
      "b = { sha256 = pkgs.lib.fakeSha256; };\n"
      "c = { hash = \"sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"; };\n"
      "d = { sha256 = \"" +
      std::string(52, '0') +
      "\"; };\n"
      "e = { outputHash = \"" +
      std::string(64, '0') +
      "\"; };\n"
      "f = { hash = \"\"; };\n"
      "g = { description = \"\"; };\n";  // an empty string that is no hash
  auto fakes = find_fake_hashes(text);
  REQUIRE(fakes.size() == 6);
  std::string sri = format_hash(kNew, HashSpelling::sri);
  std::string repaired = repair_all(text, fakes);
  CHECK(repaired == "a = { hash = \"" + sri +
                        "\"; };\n"
                        "b = { sha256 = \"" +
                        sri +
                        "\"; };\n"
                        "c = { hash = \"" +
                        sri +
                        "\"; };\n"
                        "d = { sha256 = \"" +
                        sri +
                        "\"; };\n"
                        "e = { outputHash = \"" +
                        sri +
                        "\"; };\n"
                        "f = { hash = \"" +
                        sri +
                        "\"; };\n"
                        "g = { description = \"\"; };\n");
}

TEST_CASE("clues tie a fake hash to its source") {
  std::string text =
      "torch = fetchFromGitHub {\n"
      "  owner = \"pytorch\";\n  repo = \"pytorch\";\n  rev = \"v2.10.0\";\n"
      "  hash = lib.fakeHash;\n"
      "};\n"
      "magma = fetchpatch {\n"
      "  url = \"https://github.com/icl-utk-edu/magma/commit/235aefb.patch\";\n"
      "  hash = lib.fakeHash;\n"
      "};\n";
  auto fakes = find_fake_hashes(text);
  REQUIRE(fakes.size() == 2);
  SourceClues torch{{"https://github.com/pytorch/pytorch/archive/v2.10.0.tar.gz", "v2.10.0"}, {"pytorch"}};
  SourceClues magma{{"https://github.com/icl-utk-edu/magma/commit/235aefb.patch"}, {"icl-utk-edu", "magma"}};
  CHECK(clue_distance(text, fakes[0], torch) == 1);
  CHECK(clue_distance(text, fakes[1], torch) > clue_distance(text, fakes[0], torch));
  CHECK(clue_distance(text, fakes[1], magma) == 1);
  CHECK(clue_distance(text, fakes[0], magma) > clue_distance(text, fakes[1], magma));
  CHECK(clue_distance(text, fakes[0], SourceClues{{"nothing-like-it"}, {}}) == -1);
}
