#include "core/recipe_lint.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
std::vector<std::string> problems(const std::string& name, const std::string& text, const LintRules& rules = {}) {
  std::vector<std::string> out;
  for (const LintFinding& f : lint_recipe("r.nix", name, text, rules)) out.push_back(f.problem);
  return out;
}
const std::string kSm90 = "pytorch-python313-cuda12_8-sm90-avx512";
}  // namespace

TEST_CASE("lint: CUDA enabled at the derivation level - or not") {
  // The seeds' fix: .override { cudaSupport = true; } first, then .overrideAttrs.
  CHECK(problems(kSm90, "(python3Packages.pytorch.override { cudaSupport = true; gpuTargets = [ \"sm_90\" ]; })"
                        ".overrideAttrs (o: { })")
            .size() == 1);  // only the pytorch attribute
  CHECK(problems(kSm90, "(python3Packages.torch.override { cudaSupport = true; gpuTargets = [ \"9.0\" ]; }).overrideAttrs (o: { })")
            .empty());
  // nixpkgs' own config turns it on too.
  CHECK(problems(kSm90, "import nixpkgs { config = { allowUnfree = true; cudaSupport = true; }; }").empty());
  // The seeds' first attempt: .overrideAttrs alone, USE_CUDA=1 in the environment: CPU-only.
  auto p = problems(kSm90, "python3Packages.torch.overrideAttrs (o: { cudaSupport = true; USE_CUDA = 1; })");
  REQUIRE(p.size() == 1);
  CHECK(p[0] == "a GPU recipe without cudaSupport = true given through .override");
}

TEST_CASE("lint: the architecture in the name against gpuArchSM - gpuArchNum and gpuTargets") {
  CHECK(problems(kSm90, "gpuArchSM = \"sm_90\"; config = { cudaSupport = true; };").empty());
  CHECK(problems(kSm90, "gpuArchSM = \"8.6\"; config = { cudaSupport = true; };").size() == 1);
  CHECK(problems(kSm90, "gpuArchNum = \"86\"; config = { cudaSupport = true; };").size() == 1);
  CHECK(problems(kSm90, "gpuTargets = [ \"8.6\" \"9.0\" ]; config = { cudaSupport = true; };").size() == 1);
  CHECK(problems("pytorch-python313-cuda13_0-sm121-armv9", "gpuArchSM = \"12.1\"; config = { cudaSupport = true; };").empty());
  CHECK(arch_sm_value("sm103") == "10.3");
}

TEST_CASE("lint: pnames with a configured prefix") {
  LintRules rules;
  rules.family = "pytorch";
  rules.pname_prefix = "pytorch210-";
  CHECK(problems("pytorch-python313-cpu-avx2", "pname = \"pytorch210-python313-cpu-avx2\";", rules).empty());
  CHECK(problems("pytorch-python313-cpu-avx2", "pname = \"pytorch-python313-cpu-avx2\";", rules).empty());
  CHECK(problems("pytorch-python313-cpu-avx2", "pname = \"pytorch210-python313-cpu-avx512\";", rules).size() == 1);
}

TEST_CASE("lint: nixpkgs pins - the odd one out") {
  std::string a = "url = \"https://github.com/NixOS/nixpkgs/archive/6a030d535719c5190187c4cec156f335e95e3211.tar.gz\";";
  std::string b = "url = \"https://github.com/NixOS/nixpkgs/archive/fe5e41d7ffc0421f0913e8472ce6238ed0daf8e3.tar.gz\";";
  auto f = lint_pins({{"x.nix", a}, {"y.nix", a}, {"z.nix", "\n" + b}});
  REQUIRE(f.size() == 1);
  CHECK(f[0].file == "z.nix");
  CHECK(f[0].line == 2);
  CHECK(lint_pins({{"x.nix", a}, {"y.nix", a}}).empty());
}
