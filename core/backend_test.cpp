#include "core/backend.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
const BuildTarget kTarget{"pytorch-python313-cuda13_0-sm90-avx512", "/srv/build-pytorch",
                          ".flox/pkgs/pytorch-python313-cuda13_0-sm90-avx512.nix",
                          "/var/lib/ptbuild/results"};
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
  CHECK(c.argv ==
        std::vector<std::string>{"nix", "--extra-experimental-features", "nix-command", "build", "-f",
                                 "/srv/build-pytorch/.flox/pkgs/pytorch-python313-cuda13_0-sm90-avx512.nix",
                                 "-o", "/var/lib/ptbuild/results/pytorch-python313-cuda13_0-sm90-avx512",
                                 "-L", "--keep-going", "--cores", "16"});
  CHECK(c.result_link == "/var/lib/ptbuild/results/pytorch-python313-cuda13_0-sm90-avx512");
}

TEST_CASE("backend: flox publish with and without an org - nix copy to the store") {
  CHECK(publish_command({"flox", "flox", {}}, {false, "myorg", ""}, kTarget, "/nix/store/x").argv ==
        std::vector<std::string>{"flox", "publish", "-d", "/srv/build-pytorch", "-o", "myorg",
                                 "pytorch-python313-cuda13_0-sm90-avx512"});
  CHECK(publish_command({"flox", "flox", {}}, {false, "", ""}, kTarget, "/nix/store/x").argv ==
        std::vector<std::string>{"flox", "publish", "-d", "/srv/build-pytorch",
                                 "pytorch-python313-cuda13_0-sm90-avx512"});
  CHECK(publish_command({"nix", "nix", {}}, {false, "", "file:///srv/cache"}, kTarget, "/nix/store/x").argv ==
        std::vector<std::string>{"nix", "--extra-experimental-features", "nix-command", "copy", "--to",
                                 "file:///srv/cache", "/nix/store/x"});
}

TEST_CASE("backend: a build placed on a remote builder has it as Nix's only builder and no local slot") {
  BuilderSpec b;
  b.name = "b1";
  b.uri = "ssh-ng://root@10.77.1.2";
  b.ssh_key = "/k/id";
  b.max_jobs = 3;
  b.supported_features = {"big-parallel"};
  b.public_host_key = "QUJD";
  std::map<std::string, std::string> env;
  BuildCommand nix{{"nix", "build"}, "", ""};
  place_on_builder({"nix", "nix", {}}, b, nix, env, "");
  CHECK(nix.argv ==
        std::vector<std::string>{"nix", "build", "--builders",
                                 "ssh-ng://root@10.77.1.2 x86_64-linux /k/id 3 1 big-parallel - QUJD",
                                 "--max-jobs", "0"});
  CHECK(env.empty());

  BuildCommand flox{{"flox", "build"}, "", ""};
  place_on_builder({"flox", "flox", {}}, b, flox, env, "substituters =");
  CHECK(flox.argv == std::vector<std::string>{"flox", "build"});
  CHECK(
      env["NIX_CONFIG"] ==
      "substituters =\nbuilders = ssh-ng://root@10.77.1.2 x86_64-linux /k/id 3 1 big-parallel - QUJD\nmax-jobs = 0\n");

  BuilderSpec local;
  BuildCommand here{{"nix", "build"}, "", ""};
  place_on_builder({"nix", "nix", {}}, local, here, env, "");
  CHECK(here.argv ==
        std::vector<std::string>{"nix", "build", "--builders", ""});  // /etc/nix/machines cannot take it
  CHECK(builder_ping_command({"nix", "/usr/bin/nix", {}}, b).argv.back() ==
        "ssh-ng://root@10.77.1.2?ssh-key=/k/id&base64-ssh-public-host-key=QUJD");
}

TEST_CASE(
    "backend: the probe on a GPU builder copies the artifact there and runs over ssh with its key and port") {
  BuilderSpec b;
  b.uri = "ssh://nix@gpu1:2222";
  b.ssh_key = "/k/id";
  b.public_host_key = "QUJD";
  BuildCommand cmd = remote_probe_command(
      {"nix", "/usr/bin/nix", {}}, b, "/nix/store/abc-torch",
      {"/nix/store/abc-torch/bin/python3", "/dev/stdin"},
      {{"PYTHONPATH", "/nix/store/abc-torch/lib/python3.13/site-packages"}}, "/var/lib/ptbuild/probe.py");
  REQUIRE(cmd.argv.size() == 14);
  CHECK(cmd.argv[0] == "/bin/sh");
  CHECK(cmd.argv[2].find("copy --no-check-sigs --to") != std::string::npos);
  CHECK(cmd.argv[8].find("ssh \"$@\" \"$dest\" \"$command\"") != std::string::npos);  // the ssh part
  cmd.argv.erase(cmd.argv.begin() + 8);
  CHECK(std::vector<std::string>(cmd.argv.begin() + 4, cmd.argv.end()) ==
        std::vector<std::string>{
            "/usr/bin/nix", "ssh://nix@gpu1:2222?ssh-key=/k/id&base64-ssh-public-host-key=QUJD",
            "/nix/store/abc-torch", "/var/lib/ptbuild/probe.py", "nix@gpu1", "2222", "/k/id", "QUJD",
            "env 'PYTHONPATH=/nix/store/abc-torch/lib/python3.13/site-packages' "
            "'/nix/store/abc-torch/bin/python3' '/dev/stdin'"});
}

TEST_CASE(
    "backend: a remote builder's facts are read over the same ssh, its script quoted for the remote shell") {
  BuilderSpec b;
  b.uri = "ssh-ng://nix@gpu1";
  BuildCommand cmd = machine_facts_command(b);
  REQUIRE(cmd.argv.size() == 9);
  CHECK(std::vector<std::string>(cmd.argv.begin() + 4, cmd.argv.end() - 1) ==
        std::vector<std::string>{"nix@gpu1", "", "", ""});
  CHECK(cmd.argv.back().starts_with("sh -c 'grep -E '\\''^(MemTotal|MemAvailable):'\\'' /proc/meminfo"));
  // Its garbage is collected over the same ssh, by its own Nix.
  BuildCommand gc = remote_gc_command(b, uint64_t{200} << 30);
  CHECK(std::vector<std::string>(gc.argv.begin() + 4, gc.argv.end()) ==
        std::vector<std::string>{"nix@gpu1", "", "", "", "nix-store --gc --max-freed 214748364800"});
}
