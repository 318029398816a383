#include "core/target.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
std::vector<CatalogEntry> catalog(std::initializer_list<std::pair<const char*, const char*>> items) {
  std::vector<CatalogEntry> out;
  for (auto [name, repo] : items) out.push_back({name, repo, parse_variant_name(name)});
  return out;
}

const auto kMatrix = catalog({
    {"pytorch-python313-cuda12_8-sm90-avx512", "pytorch"},
    {"pytorch-python313-cuda12_9-sm90-avx512", "pytorch"},
    {"pytorch-python313-cuda13_0-sm90-avx512", "pytorch"},
    {"pytorch-python313-cuda13_1-sm90-avx512", "pytorch"},
    {"pytorch-python313-cuda13_0-sm120-avx512", "pytorch"},
    {"pytorch-python313-cuda13_0-sm120-avx2", "pytorch"},
    {"pytorch-python313-cpu-avx2", "pytorch"},
    {"torchvision-python313-cuda13_0-sm90-avx512", "torchvision"},
});
}  // namespace

TEST_CASE("a full name resolves to itself") {
  Resolution r = resolve_targets({"pytorch-python313-cpu-avx2"}, kMatrix, {});
  REQUIRE(r.ok());
  CHECK(r.names == std::vector<std::string>{"pytorch-python313-cpu-avx2"});
}

TEST_CASE("an alias that matches one variant resolves to it") {
  Resolution r = resolve_targets({"cpu-avx2"}, kMatrix, {});
  REQUIRE(r.ok());
  CHECK(r.names == std::vector<std::string>{"pytorch-python313-cpu-avx2"});
  r = resolve_targets({"sm120-avx2"}, kMatrix, {});
  CHECK(r.names == std::vector<std::string>{"pytorch-python313-cuda13_0-sm120-avx2"});
}

TEST_CASE("an ambiguous alias is an error that lists every candidate") {
  Resolution r = resolve_targets({"sm90-avx512"}, kMatrix, {});
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].code == "ambiguous_target");
  CHECK(r.errors[0].candidates.size() == 5);
  for (const char* cuda : {"cuda12_8", "cuda12_9", "cuda13_0", "cuda13_1"})
    CHECK(r.errors[0].message.find(std::string(cuda) + "-sm90-avx512") != std::string::npos);
  CHECK(r.names.empty());
}

TEST_CASE("default_cuda and default_family decide an ambiguous alias") {
  AliasDefaults d;
  d.default_cuda_by_repo = {{"pytorch", "13_0"}, {"torchvision", "13_0"}};
  // cuda narrows to two (pytorch and torchvision, both 13_0): still ambiguous.
  Resolution r = resolve_targets({"sm90-avx512"}, kMatrix, d);
  REQUIRE_FALSE(r.ok());
  d.default_family = "pytorch";
  r = resolve_targets({"sm90-avx512"}, kMatrix, d);
  REQUIRE(r.ok());
  CHECK(r.names == std::vector<std::string>{"pytorch-python313-cuda13_0-sm90-avx512"});
  // A longer alias is not ambiguous in the first place.
  r = resolve_targets({"cuda12_9-sm90-avx512"}, kMatrix, {});
  CHECK(r.names == std::vector<std::string>{"pytorch-python313-cuda12_9-sm90-avx512"});
}

TEST_CASE("a default that would leave nothing does not hide the candidates") {
  AliasDefaults d;
  d.default_cuda_by_repo = {{"pytorch", "11_8"}};
  Resolution r = resolve_targets({"sm90-avx512"}, kMatrix, d);
  REQUIRE_FALSE(r.ok());
  CHECK(r.errors[0].candidates.size() == 5);
}

TEST_CASE("globs match full names and aliases - all matches everything") {
  Resolution r = resolve_targets({"sm120-*"}, kMatrix, {});
  REQUIRE(r.ok());
  CHECK(r.names.size() == 2);
  r = resolve_targets({"*-avx512"}, kMatrix, {});
  CHECK(r.names.size() == 6);
  r = resolve_targets({"torchvision-*"}, kMatrix, {});
  CHECK(r.names == std::vector<std::string>{"torchvision-python313-cuda13_0-sm90-avx512"});
  r = resolve_targets({"cuda13_[01]-sm90-*"}, kMatrix, {});
  CHECK(r.names.size() == 3);
  r = resolve_targets({"all"}, kMatrix, {});
  CHECK(r.names.size() == kMatrix.size());
}

TEST_CASE("several targets give each variant once - in catalog order") {
  Resolution r = resolve_targets({"cpu-avx2", "pytorch-python313-cpu-avx2", "sm120-*"}, kMatrix, {});
  REQUIRE(r.ok());
  CHECK(r.names == std::vector<std::string>{"pytorch-python313-cuda13_0-sm120-avx512",
                                            "pytorch-python313-cuda13_0-sm120-avx2",
                                            "pytorch-python313-cpu-avx2"});
}

TEST_CASE("unknown targets are reported by name - each one") {
  Resolution r = resolve_targets({"sm75-avx2", "nothing-*", "cpu-avx2"}, kMatrix, {});
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].code == "unknown_target");
  CHECK(r.errors[0].message.find("sm75-avx2") != std::string::npos);
  CHECK(r.errors[1].message.find("nothing-*") != std::string::npos);
  // An alias must be cut at a dash: "avx2" is a suffix of "cpu-avx2" only at a boundary.
  CHECK_FALSE(resolve_targets({"vx2"}, kMatrix, {}).ok());
}

TEST_CASE("glob matching") {
  CHECK(glob_match("*", ""));
  CHECK(glob_match("a*c", "abbbc"));
  CHECK_FALSE(glob_match("a*c", "abbb"));
  CHECK(glob_match("a?c", "abc"));
  CHECK(glob_match("[!x]bc", "abc"));
  CHECK_FALSE(glob_match("[!a]bc", "abc"));
  CHECK(glob_match("sm[0-9]*", "sm120"));
  CHECK(glob_match("*a*a*a*", "aaaa"));
  CHECK_FALSE(glob_match("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}
