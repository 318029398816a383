#include "core/changes.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace ptbuild;
using json = nlohmann::json;

namespace {

std::string path(const std::string& hash_letter, const std::string& name) {
  return "/nix/store/" + std::string(32, hash_letter[0]) + "-" + name;
}

// A closure as `nix show-derivation -r` prints it: the top derivation and its inputs.
struct ClosureBuilder {
  json closure = json::object();
  std::string add(const std::string& h, const std::string& name, json env = json::object(),
                  json outputs = nullptr, json srcs = json::array()) {
    std::string p = path(h, name + ".drv");
    env["name"] = name;
    if (outputs.is_null()) outputs = {{"out", {{"path", path(h, name)}}}};
    closure[p] = {{"outputs", outputs}, {"inputSrcs", srcs}, {"inputDrvs", json::object()}, {"env", env}};
    return p;
  }
  std::string source(const std::string& h, const std::string& name, const std::string& url,
                     const std::string& hash) {
    return add(h, name, {{"url", url}},
               {{"out", {{"path", path(h, name)}, {"hash", hash}, {"hashAlgo", "sha256"}}}});
  }
};

}  // namespace

TEST_CASE("changes: a derivation name splits where Nix splits it") {
  CHECK(parse_drv_name("magma-2.9.0").name == "magma");
  CHECK(parse_drv_name("magma-2.9.0").version == "2.9.0");
  CHECK(parse_drv_name("python3.13-torch-2.10.0").name == "python3.13-torch");
  CHECK(parse_drv_name("cuda_cccl-13.0.50").version == "13.0.50");
  CHECK(parse_drv_name("source").name == "source");
  CHECK(parse_drv_name("source").version.empty());
  CHECK(store_path_name(path("a", "magma-2.9.0.drv")) == "magma-2.9.0");
  CHECK(store_path_name(path("a", "fix.patch")) == "fix.patch");
}

TEST_CASE("changes: versions moved, inputs added and removed, a source's hash, flags and a patch") {
  ClosureBuilder a, b;
  a.add("m", "magma-2.9.0");
  b.add("n", "magma-2.9.1");
  a.add("c", "cuda_nvcc-13.0.48");
  b.add("d", "cuda_nvcc-13.1.20");
  b.add("e", "cuda_cccl-13.1.20");
  a.add("f", "old-hook");
  a.add("g", "zlib-1.3");  // the same version, rebuilt over other inputs
  b.add("h", "zlib-1.3");
  a.source("s", "source", "https://github.com/pytorch/pytorch", "sha256-AAA");
  b.source("t", "source", "https://github.com/pytorch/pytorch", "sha256-BBB");
  std::string top_a = a.add("1", "pytorch-python313-cpu-avx2",
                            {{"cmakeFlags", "-DUSE_CUDA=OFF -DBLAS=" + path("q", "openblas") + "/lib"},
                             {"buildInputs", path("m", "magma-2.9.0")}},
                            nullptr, json::array({path("p", "fix.patch"), path("x", "setup.sh")}));
  std::string top_b =
      b.add("2", "pytorch-python313-cpu-avx2",
            {{"cmakeFlags", "-DUSE_CUDA=OFF -DUSE_MKLDNN=ON -DBLAS=" + path("r", "openblas") + "/lib"},
             {"buildInputs", path("n", "magma-2.9.1")}},
            nullptr, json::array({path("o", "fix.patch"), path("x", "setup.sh")}));
  DerivationDiff d = diff_derivations(a.closure, top_a, b.closure, top_b);
  CHECK_FALSE(d.same);
  REQUIRE(d.versions.size() == 4);
  // Versions that moved first, then what came, then what went.
  CHECK(d.versions[0].name == "cuda_nvcc");
  CHECK(d.versions[0].before == "13.0.48");
  CHECK(d.versions[0].after == "13.1.20");
  CHECK(d.versions[1].name == "magma");
  CHECK(d.versions[1].after == "2.9.1");
  CHECK(d.versions[2].name == "cuda_cccl");
  CHECK(d.versions[2].change == "added");
  CHECK(d.versions[3].name == "old-hook");
  CHECK(d.versions[3].change == "removed");
  CHECK(d.rebuilt == 1);
  REQUIRE(d.sources.size() == 1);
  CHECK(d.sources[0].before == "sha256-AAA");
  CHECK(d.sources[0].after == "sha256-BBB");
  CHECK(d.sources[0].url == "https://github.com/pytorch/pytorch");
  CHECK(d.files == std::vector<std::string>{"fix.patch"});
  // Only the flag that is new: a store path whose hash moved is the inputs' news, not the flags'.
  REQUIRE(d.variables.size() == 1);
  CHECK(d.variables[0].name == "cmakeFlags");
  CHECK(d.variables[0].added == std::vector<std::string>{"-DUSE_MKLDNN=ON"});
  CHECK(d.variables[0].removed.empty());

  Changes c{.job = 9, .variant = "pytorch-python313-cpu-avx2", .since = 4};
  c.derivation = d;
  c.since_commit = "a";
  c.commit = "d";
  c.commits = {{"cccccccccc", "overlay: magma 2.9.1", "me", "2026-12-01T00:00:00Z", {"overlays/magma.nix"}}};
  c.actions = {"repaired a hash in pkgs/x.nix"};
  std::vector<std::string> s = summarize(c);
  REQUIRE(s.size() == 6);
  CHECK(s[0] == "inputs: cuda_nvcc 13.0.48 → 13.1.20, magma 2.9.0 → 2.9.1, +cuda_cccl 13.1.20 (+1 more)");
  CHECK(s[1].starts_with("sources: source hash sha256-AAA → sha256-BBB"));
  CHECK(s[2] == "flags: cmakeFlags: +-DUSE_MKLDNN=ON");
  CHECK(s[3] == "files: fix.patch changed");
  CHECK(s[4] == "commit ccccccc \"overlay: magma 2.9.1\" changed overlays/magma.nix");
  CHECK(s[5] == "ptbuild: repaired a hash in pkgs/x.nix");

  // What is stored reads back the same.
  c.summary = s;
  CHECK(to_json(changes_from_json(to_json(c))) == to_json(c));
}

TEST_CASE("changes: one derivation, or none to compare with, is said so") {
  ClosureBuilder a;
  std::string top = a.add("1", "pytorch-python313-cpu-avx2");
  CHECK(diff_derivations(a.closure, top, a.closure, top).same);
  Changes same{.job = 2, .variant = "v", .since = 1};
  same.derivation = diff_derivations(a.closure, top, a.closure, top);
  same.since_commit = same.commit = "abc";
  std::vector<std::string> s = summarize(same);
  REQUIRE(s.size() == 2);
  CHECK(s[0].starts_with("the derivation is #1's"));
  CHECK(s[1] == "no commit since #1 touched the recipe or a file it reads");
  CHECK(summarize(Changes{.job = 1, .variant = "v"}) ==
        std::vector<std::string>{"no earlier good build of v to compare with"});
  Changes gone{
      .job = 3, .variant = "v", .since = 1, .derivation_note = "#1's derivation is no longer in the store"};
  CHECK(summarize(gone) == std::vector<std::string>{"derivation: #1's derivation is no longer in the store"});
}
