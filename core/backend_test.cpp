#include "core/backend.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
const BuildTarget kTarget{"pytorch-python313-cuda13_0-sm90-avx512", "/srv/build-pytorch",
                          ".flox/pkgs/pytorch-python313-cuda13_0-sm90-avx512.nix", "/var/lib/ptbuild/results"};
}

TEST_CASE("backend: flox build -d REPO PACKAGE in the repo - with backend.args") {
  BuildCommand c = build_command({"flox", "/usr/bin/flox", {"--verbose"}}, kTarget);
  CHECK(c.argv == std::vector<std::string>{"/usr/bin/flox", "build", "-d", "/srv/build-pytorch",
                                           "pytorch-python313-cuda13_0-sm90-avx512", "--verbose"});
  CHECK(c.cwd == "/srv/build-pytorch");
  CHECK(c.result_link == "/srv/build-pytorch/result-pytorch-python313-cuda13_0-sm90-avx512");
}

TEST_CASE("backend: nix build of the recipe file with a result link under the state folder") {
  BuildCommand c = build_command({"nix", "nix", {"--cores", "16"}}, kTarget);
  CHECK(c.argv == std::vector<std::string>{
                      "nix", "--extra-experimental-features", "nix-command", "build", "-f",
                      "/srv/build-pytorch/.flox/pkgs/pytorch-python313-cuda13_0-sm90-avx512.nix", "-o",
                      "/var/lib/ptbuild/results/pytorch-python313-cuda13_0-sm90-avx512", "-L", "--keep-going", "--cores", "16"});
  CHECK(c.result_link == "/var/lib/ptbuild/results/pytorch-python313-cuda13_0-sm90-avx512");
}

TEST_CASE("backend: flox publish with and without an org - nix copy to the store") {
  CHECK(publish_command({"flox", "flox", {}}, {false, "myorg", ""}, kTarget, "/nix/store/x").argv ==
        std::vector<std::string>{"flox", "publish", "-d", "/srv/build-pytorch", "-o", "myorg",
                                 "pytorch-python313-cuda13_0-sm90-avx512"});
  CHECK(publish_command({"flox", "flox", {}}, {false, "", ""}, kTarget, "/nix/store/x").argv ==
        std::vector<std::string>{"flox", "publish", "-d", "/srv/build-pytorch", "pytorch-python313-cuda13_0-sm90-avx512"});
  CHECK(publish_command({"nix", "nix", {}}, {false, "", "file:///srv/cache"}, kTarget, "/nix/store/x").argv ==
        std::vector<std::string>{"nix", "--extra-experimental-features", "nix-command", "copy", "--to",
                                 "file:///srv/cache", "/nix/store/x"});
}
