#include "core/recipe_lint.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
std::vector<LintFinding> lint(const std::string& name, const std::string& text, const LintRules& rules = {},
                              const RecipeExpectation& expect = {}) {
  return lint_recipe("r.nix", name, text, rules, expect);
}
std::vector<std::string> problems(const std::string& name, const std::string& text,
                                  const LintRules& rules = {}) {
  std::vector<std::string> out;
  for (const LintFinding& f : lint(name, text, rules)) out.push_back(f.problem);
  return out;
}
std::vector<std::string> rules_of(const std::vector<LintFinding>& findings) {
  std::vector<std::string> out;
  for (const LintFinding& f : findings) out.push_back(f.rule);
  return out;
}
const std::string kSm90 = "pytorch-python313-cuda12_8-sm90-avx512";
const std::string kCudaOn =
    "(python3Packages.torch.override { cudaSupport = true; gpuTargets = [ gpuArchSM ]; }).overrideAttrs (o: { })\n";
}  // namespace

TEST_CASE("lint: CUDA enabled at the derivation level - or not") {
  // The seeds' fix: .override { cudaSupport = true; } first, then .overrideAttrs.
  CHECK(rules_of(lint(kSm90,
                      "(python3Packages.pytorch.override { cudaSupport = true; gpuTargets = [ \"9.0\" ]; })"
                      ".overrideAttrs (o: { })")) == std::vector<std::string>{"torch-attr"});
  CHECK(
      problems(
          kSm90,
          "(python3Packages.torch.override { cudaSupport = true; gpuTargets = [ \"9.0\" ]; }).overrideAttrs (o: { })")
          .empty());
  // nixpkgs' own config turns it on too.
  CHECK(problems(kSm90, "import nixpkgs { config = { allowUnfree = true; cudaSupport = true; }; }").empty());
  // The seeds' first attempt: .overrideAttrs alone, USE_CUDA=1 in the environment: CPU-only.
  auto p = lint(kSm90, "python3Packages.torch.overrideAttrs (o: { cudaSupport = true; USE_CUDA = 1; })");
  REQUIRE(p.size() == 1);
  CHECK(p[0].rule == "cuda-off");
  CHECK(p[0].problem == "a GPU recipe without cudaSupport = true given through .override");
  // Switched on only in a comment is not switched on.
  CHECK(rules_of(lint(kSm90, "# config = { cudaSupport = true; };\npython3Packages.torch")) ==
        std::vector<std::string>{"cuda-off"});
}

TEST_CASE("lint: an architecture value is judged by the GPU it names and by where it goes") {
  std::string on = "config = { cudaSupport = true; };\n";
  // Used nowhere but in messages: any spelling of the right GPU.
  CHECK(problems(kSm90, on + "gpuArchSM = \"sm_90\"; gpuArchNum = \"90\";").empty());
  // Another GPU, in any spelling and any use.
  auto other = lint(kSm90, on + "gpuArchSM = \"8.6\";");
  REQUIRE(other.size() == 1);
  CHECK(other[0].rule == "arch-value");
  CHECK(other[0].to_string() == "r.nix:2: gpuArchSM = \"8.6\" in an sm90 recipe (gpuArchSM = \"9.0\")");
  CHECK(rules_of(lint(kSm90, on + "gpuArchNum = \"86\";")) == std::vector<std::string>{"arch-value"});
  CHECK(rules_of(lint(kSm90, on + "gpuTargets = [ \"8.6\" \"9.0\" ];")) ==
        std::vector<std::string>{"arch-value"});
  // gpuTargets goes to TORCH_CUDA_ARCH_LIST: "8.6" (build-pytorch's sm86 recipes, gpuArchNum = "8.6"), not
  // "sm_86".
  CHECK(problems("pytorch-python313-cuda12_8-sm86-avx2",
                 "gpuArchNum = \"8.6\";\n" + on + "(torch.override { gpuTargets = [ gpuArchNum ]; })")
            .empty());
  auto sm110 = lint(
      "pytorch-python313-cuda13_0-sm110-armv9",
      "gpuArchNum = \"110\";\n  gpuArchSM = \"sm_110\";\n(python3Packages.torch.override {\n cudaSupport = true;\n"
      " gpuTargets = [ gpuArchSM ];\n})");
  REQUIRE(sm110.size() == 1);
  CHECK(sm110[0].rule == "arch-spelling");
  CHECK(sm110[0].line == 2);
  CHECK(sm110[0].problem == "gpuArchSM = \"sm_110\" goes to gpuTargets, which takes \"11.0\"");
  CHECK(sm110[0].hint == "gpuArchSM = \"11.0\"");
  CHECK(rules_of(lint(kSm90, on + "gpuTargets = [ \"sm_90\" ];")) ==
        std::vector<std::string>{"arch-spelling"});
  // CMAKE_CUDA_ARCHITECTURES takes the integer.
  CHECK(problems(kSm90,
                 on + "gpuArchNum = \"90\";\ncmakeFlags = [ \"-DCMAKE_CUDA_ARCHITECTURES=${gpuArchNum}\" ];")
            .empty());
  auto cmake = lint(
      kSm90, on + "gpuArchNum = \"9.0\";\ncmakeFlags = [ \"-DCMAKE_CUDA_ARCHITECTURES=${gpuArchNum}\" ];");
  REQUIRE(cmake.size() == 1);
  CHECK(cmake[0].hint == "gpuArchNum = \"90\"");
  CHECK(problems("pytorch-python313-cuda13_0-sm121-armv9",
                 "gpuArchSM = \"12.1\"; config = { cudaSupport = true; };")
            .empty());
  CHECK(arch_sm_value("sm103") == "10.3");
  // A name no value can match is still linted, without crashing on its architecture.
  CHECK(rules_of(lint("pytorch-python313-cuda13_0-sm1000-avx2", "gpuArchSM = \"9.0\";")) ==
        std::vector<std::string>{"cuda-off"});
}

TEST_CASE("lint: GPUs of one platform and CUDA of one version") {
  std::string on = "config = { cudaSupport = true; };\n";
  CHECK(rules_of(lint("pytorch-python313-cuda13_0-sm121-avx512", on)) ==
        std::vector<std::string>{"arch-platform"});
  CHECK(rules_of(lint("pytorch-python313-cuda13_0-sm110-avx2", on)) ==
        std::vector<std::string>{"arch-platform"});
  CHECK(problems("pytorch-python313-cuda13_0-sm121-armv9", on).empty());
  // The package set: the name's CUDA version, or exactly the matrix's.
  std::string overlay = "(final: prev: { cudaPackages = final.cudaPackages_13; })\n";
  CHECK(problems("pytorch-python313-cuda13_0-sm90-avx2", on + overlay).empty());
  CHECK(rules_of(lint("pytorch-python313-cuda12_9-sm90-avx2", on + overlay)) ==
        std::vector<std::string>{"cuda-packages"});
  CHECK(rules_of(lint("pytorch-python313-cuda12_9-sm90-avx2", on + "cudaPackages_12_8;")) ==
        std::vector<std::string>{"cuda-packages"});
  RecipeExpectation e;
  e.cuda_packages = "cudaPackages_13";
  CHECK(lint("pytorch-python313-cuda13_0-sm90-avx2", on + overlay, {}, e).empty());
  auto none = lint("pytorch-python313-cuda13_0-sm90-avx2", on, {}, e);
  REQUIRE(none.size() == 1);
  CHECK(none[0].problem == "a cuda13_0 recipe that selects no cudaPackages_13");
  // A CPU-only recipe that switches CUDA on builds it for nothing (build-pytorch 17312f6).
  auto cpu = lint("pytorch-python313-cpu-avx2",
                  "import nixpkgs {\n  config = { allowUnfree = true; cudaSupport = true; };\n}");
  REQUIRE(cpu.size() == 1);
  CHECK(cpu[0].rule == "cpu-cuda");
  CHECK(cpu[0].line == 2);
}

TEST_CASE("lint: cpuFlags beyond the instruction set - and against the matrix") {
  // build-pytorch f3e1d8b: -mfma in an avx build, SIGILL on Ivy Bridge.
  auto avx = lint("pytorch-python313-cpu-avx",
                  "cpuFlags = [\n  \"-mavx\"        # AVX instructions\n  \"-mfma\"  # FMA\n];");
  REQUIRE(avx.size() == 1);
  CHECK(avx[0].rule == "isa-flags");
  CHECK(avx[0].line == 3);
  CHECK(avx[0].problem == "cpuFlags has \"-mfma\" in an avx recipe");
  CHECK(
      problems("pytorch-python313-cpu-avx", "cpuFlags = [ \"-mavx\" \"-mno-fma\" \"-mno-avx2\" ];").empty());
  CHECK(problems("pytorch-python313-cpu-avx512", "cpuFlags = [ \"-mavx512f\" \"-mavx512vnni\" ];").size() ==
        1);
  CHECK(problems("pytorch-python313-cpu-armv8_2", "cpuFlags = [ \"-march=armv9-a+sve\" ];").size() == 1);
  RecipeExpectation e;
  e.cpu_flags = {"-mavx2", "-mfma", "-mf16c"};
  e.declared_isa_flags = true;
  CHECK(lint("pytorch-python313-cpu-avx2", "cpuFlags = [ \"-mfma\" \"-mavx2\" \"-mf16c\" ];", {}, e).empty());
  auto off = lint("pytorch-python313-cpu-avx2", "cpuFlags = [ \"-mavx2\" ];", {}, e);
  REQUIRE(off.size() == 1);
  CHECK(off[0].hint == "cpuFlags = [ \"-mavx2\" \"-mfma\" \"-mf16c\" ]");
}

TEST_CASE("lint: pnames with a configured prefix") {
  LintRules rules;
  rules.family = "pytorch";
  rules.pname_prefix = "pytorch210-";
  CHECK(problems("pytorch-python313-cpu-avx2", "pname = \"pytorch210-python313-cpu-avx2\";", rules).empty());
  CHECK(problems("pytorch-python313-cpu-avx2", "pname = \"pytorch-python313-cpu-avx2\";", rules).empty());
  CHECK(
      problems("pytorch-python313-cpu-avx2", "pname = \"pytorch210-python313-cpu-avx512\";", rules).size() ==
      1);
  CHECK(problems("pytorch-python313-cpu-avx2", "# pname = \"old\";\npname = \"pytorch-python313-cpu-avx2\";")
            .empty());
}

TEST_CASE("lint: nixpkgs pins - against the matrix's pin, and never the majority's") {
  std::string good = "6a030d535719c5190187c4cec156f335e95e3211",
              old = "fe5e41d7ffc0421f0913e8472ce6238ed0daf8e3";
  auto url = [](const std::string& rev) {
    return "\nurl = \"https://github.com/NixOS/nixpkgs/archive/" + rev + ".tar.gz\";";
  };
  REQUIRE(find_nixpkgs_pin(url(good)));
  CHECK(find_nixpkgs_pin(url(good))->line == 2);
  CHECK(!find_nixpkgs_pin("# nixpkgs " + good));  // a comment is not a pin
  RecipeExpectation e;
  e.group = "cuda13_0";
  e.nixpkgs = good;
  auto f =
      lint("pytorch-python313-cuda13_0-sm110-armv9", "config = { cudaSupport = true; };" + url(old), {}, e);
  REQUIRE(f.size() == 1);
  CHECK(f[0].rule == "pin");
  CHECK(f[0].to_string() ==
        "r.nix:2: nixpkgs pinned to fe5e41d7ffc0 (the matrix pins cuda13_0 to 6a030d535719)");
  CHECK(lint("pytorch-python313-cuda13_0-sm110-armv9", "config = { cudaSupport = true; };" + url(good), {}, e)
            .empty());

  // Undeclared: build-pytorch at 73046aa, 3 recipes on the broken pin and 2 on the right one.
  // Doctor says the group is split and names both sides; it tells no recipe to switch.
  std::vector<GroupedValue> pins{
      {"a.nix", 3, "cuda13_0", "fe5e41d7ffc0"}, {"b.nix", 3, "cuda13_0", "fe5e41d7ffc0"},
      {"c.nix", 3, "cuda13_0", "fe5e41d7ffc0"}, {"d.nix", 4, "cuda13_0", "6a030d535719"},
      {"e.nix", 4, "cuda13_0", "6a030d535719"}, {"f.nix", 1, "cuda12_8", "fe5e41d7ffc0"}};
  auto split = lint_splits("pin-split", "pin nixpkgs", "nixpkgs", pins);
  REQUIRE(split.size() == 2);
  for (const LintFinding& s : split) {
    CHECK(s.rule == "pin-split");
    CHECK(s.hint.find("declare the right one in [repo.matrix] (nixpkgs)") != std::string::npos);
    CHECK(s.hint.find("use the same") == std::string::npos);
  }
  CHECK(
      split[0].to_string() ==
      "d.nix:4: 2 cuda13_0 recipe(s) pin nixpkgs 6a030d535719 (others of cuda13_0: fe5e41d7ffc0 (3); declare the right one in "
      "[repo.matrix] (nixpkgs) and doctor names the recipes to change)");
  CHECK(split[1].problem == "3 cuda13_0 recipe(s) pin nixpkgs fe5e41d7ffc0");
  // Different CUDA versions on different pins is how real branches are built.
  CHECK(lint_splits("pin-split", "pin nixpkgs", "nixpkgs",
                    {{"a.nix", 1, "cuda13_0", "x"}, {"b.nix", 1, "cuda12_8", "y"}})
            .empty());
}

TEST_CASE("lint: a recipe's cpuFlags - read past comments") {
  auto flags = find_cpu_flags(
      "let\n  # cpuFlags = [ \"-mavx512f\" ];\n  cpuFlags = [\n    \"-mavx2\"  # AVX2\n    \"-mfma\"\n  ];\nin 1");
  REQUIRE(flags);
  CHECK(flags->line == 3);
  CHECK(flags->flags == std::vector<std::string>{"-mavx2", "-mfma"});
  CHECK(!find_cpu_flags("{ }"));
}

TEST_CASE("lint: every rule has a name and a title") {
  for (const LintRule& r : lint_rules()) {
    CHECK(!r.title.empty());
    CHECK(find_lint_rule(r.name) == &r);
  }
  CHECK(find_lint_rule("no-such-rule") == nullptr);
}

TEST_CASE("lint: parallelism fixed in the recipe is reported with the fix that gives it the build's cores") {
  // As 111 of the 237 recipes of build-pytorch's pytorch-2.10-python313 branch write it.
  std::string recipe = kCudaOn +
                       "  ninjaFlags = [ \"-j32\" ];\n"
                       "  preConfigure = ''\n"
                       "    # Limit build parallelism to prevent memory saturation: was -j64\n"
                       "    export MAX_JOBS=32\n"
                       "  '';\n"
                       "  enableParallelBuilding = false;\n";
  std::vector<LintFinding> found;
  for (const LintFinding& f : lint(kSm90, recipe))
    if (f.rule == "hardcoded-parallelism") found.push_back(f);
  REQUIRE(found.size() == 3);
  CHECK(found[0].problem == "-j32 builds with 32 jobs whatever cores the build is given");
  CHECK(found[0].line == 2);
  CHECK(found[1].problem == "MAX_JOBS=32 runs 32 compilers whatever cores the build is given");
  CHECK(found[1].hint == "export MAX_JOBS=$NIX_BUILD_CORES");
  CHECK(found[2].line == 7);
  // What follows the cores it is given, and a comment, are fine.
  CHECK(rules_of(lint(kSm90, kCudaOn + "  preBuild = ''\n    export MAX_JOBS=$NIX_BUILD_CORES\n"
                                       "    make -j$NIX_BUILD_CORES # not -j8\n  '';\n")) ==
        std::vector<std::string>{});
}
