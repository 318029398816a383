// `ptbuild recipes plan|render` and `ptbuild doctor`: offline, on a real repo folder.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "core/text.h"
#include "core/variant.h"
#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

struct MatrixRepo {
  TempDir dir;
  std::string repo() const { return dir / "repo"; }
  std::string config() const { return dir / "ptbuild.toml"; }
  MatrixRepo() {
    std::string cfg = read_file(source_dir() + "/tests/fixtures/matrix/ptbuild.toml");
    cfg.replace(cfg.find("REPO"), 4, repo());
    dir.write("ptbuild.toml", cfg);
    for (const char* t : {"gpu-x86.nix", "gpu-arm.nix", "cpu.nix"})
      dir.write(std::string("repo/templates/") + t,
                read_file(source_dir() + "/tests/fixtures/matrix/templates/" + t));
    std::filesystem::create_directories(repo() + "/.flox/pkgs");
  }
  ProcessResult ptbuild(std::vector<std::string> args) const {
    return run_ptbuild(config(), std::move(args));
  }
  std::string recipe(const std::string& name) const {
    return read_file(repo() + "/.flox/pkgs/" + name + ".nix");
  }
  void edit(const std::string& name, const std::string& from, const std::string& to) const {
    REQUIRE_MESSAGE(replace_in_file(repo() + "/.flox/pkgs/" + name + ".nix", from, to), from);
  }
  int line_of(const std::string& name, const std::string& needle) const {
    std::string text = recipe(name);
    size_t at = text.find(needle);
    REQUIRE(at != std::string::npos);
    return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
  }
};

const std::map<std::string, std::string> kFlags{
    {"avx2", "\"-mavx2\" \"-mfma\" \"-mf16c\""},
    {"avx512", "\"-mavx512f\" \"-mavx512dq\" \"-mavx512vl\" \"-mavx512bw\" \"-mfma\""},
    {"avx512bf16", "\"-mavx512f\" \"-mavx512dq\" \"-mavx512vl\" \"-mavx512bw\" \"-mavx512bf16\" \"-mfma\""},
    {"avx512vnni", "\"-mavx512f\" \"-mavx512dq\" \"-mavx512vl\" \"-mavx512bw\" \"-mavx512vnni\" \"-mfma\""},
    {"armv8_2", "\"-march=armv8.2-a\""},
    {"armv9", "\"-march=armv9-a\""}};

std::vector<std::string> finding_lines(const ProcessResult& r) {
  std::vector<std::string> out;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);)
    if (l.find(".nix:") != std::string::npos) out.push_back(std::string(ptbuild::trim(l)));
  return out;
}

}  // namespace

TEST_CASE(
    "recipes: the seeds' plan as corrected renders from three templates with the right axes - flags and pnames") {
  MatrixRepo m;
  ProcessResult plan = m.ptbuild({"recipes", "plan", "--json"});
  REQUIRE(plan.exit_code == 1);  // something is missing
  CHECK(json::parse(plan.out)["repos"][0]["missing"].size() == 36);

  ProcessResult render = m.ptbuild({"recipes", "render"});
  REQUIRE_MESSAGE(render.exit_code == 0, render.err);
  CHECK(render.out.find("ready to add:  git add") != std::string::npos);
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(m.repo() + "/.flox/pkgs"))
    names.insert(e.path().stem().string());
  REQUIRE(names.size() == 36);
  int gpu_x86 = 0, gpu_arm = 0, cpu = 0;
  for (const std::string& name : names) {
    CAPTURE(name);
    ptbuild::VariantAxes a = ptbuild::parse_variant_name(name);
    REQUIRE(a.known());
    std::string text = m.recipe(name);
    CHECK(text.find("pname = \"pytorch210-" + name.substr(8) + "\";") != std::string::npos);
    CHECK(text.find("cpuFlags = [ " + kFlags.at(*a.isa) + " ];") != std::string::npos);
    CHECK(text.find('@') == std::string::npos);  // every placeholder filled
    // Parallelism is the cores ptbuild gives the build, not a number (doctor's
    // hardcoded-parallelism, docs/resources.md).
    CHECK(text.find("export MAX_JOBS=$NIX_BUILD_CORES") != std::string::npos);
    if (a.is_gpu()) {
      std::string num = a.gpu_arch->substr(2);
      std::string sm = num.substr(0, num.size() - 1) + "." + num.substr(num.size() - 1);
      CHECK(text.find("gpuArchSM = \"" + sm + "\";") != std::string::npos);
      CHECK(text.find("gpuArchNum = \"" + num + "\";") != std::string::npos);
      bool arm = a.platform == "aarch64-linux";
      CHECK(text.find(arm ? "\"aarch64-linux\"" : "\"x86_64-linux\"") != std::string::npos);
      (arm ? gpu_arm : gpu_x86)++;
    } else {
      CHECK(text.find("cudaPackages") == std::string::npos);
      ++cpu;
    }
  }
  CHECK(gpu_x86 == 28);
  CHECK(gpu_arm == 4);
  CHECK(cpu == 4);

  ProcessResult replan = m.ptbuild({"recipes", "plan", "--json"});
  CHECK(replan.exit_code == 0);
  json again = json::parse(replan.out)["repos"][0];
  CHECK(again["in_line"] == 36);
  CHECK(again["missing"].empty());
  ProcessResult doctor = m.ptbuild({"doctor"});
  CHECK_MESSAGE(doctor.exit_code == 0, doctor.out);
  CHECK(doctor.out.find("no problems in 36 recipe(s)") != std::string::npos);
}

TEST_CASE("doctor: every drift is found at its line - and render --write repairs generated files only") {
  MatrixRepo m;
  REQUIRE(m.ptbuild({"recipes", "render"}).exit_code == 0);
  const std::string sm90 = "pytorch-python313-cuda13_0-sm90-avx512",
                    sm86 = "pytorch-python313-cuda13_0-sm86-avx2",
                    sm120 = "pytorch-python313-cuda13_0-sm120-avx2",
                    sm110 = "pytorch-python313-cuda13_0-sm110-armv9", cpu = "pytorch-python313-cpu-avx2",
                    sm89 = "pytorch-python313-cuda13_0-sm89-avx512bf16",
                    sm100 = "pytorch-python313-cuda13_0-sm100-avx512vnni";
  m.edit(sm90, "6a030d535719c5190187c4cec156f335e95e3211", "fe5e41d7ffc0421f0913e8472ce6238ed0daf8e3");
  m.edit(sm86, "gpuArchSM = \"8.6\"", "gpuArchSM = \"9.0\"");
  m.edit(sm120, "pname = \"pytorch210-python313-cuda13_0-sm120-avx2\"",
         "pname = \"pytorch210-python313-cuda13_0-sm120-avx512\"");
  m.edit(sm110, "pkgs.python3Packages.torch.override", "pkgs.python3Packages.pytorch.override");
  m.edit(cpu, "pkgs.python3Packages.torch.overrideAttrs",
         "pkgs.cudaPackages.cudatoolkit // pkgs.python3Packages.torch.overrideAttrs");
  m.edit(sm89, "(final: prev: { cudaPackages = final.cudaPackages_13; })\n", "");
  m.edit(sm100,
         "(pkgs.python3Packages.torch.override {\n  cudaSupport = true;\n  gpuTargets = [ gpuArchSM ];\n})",
         "pkgs.python3Packages.torch");
  // Leftovers no axis produces.
  for (const char* stray :
       {"pytorch-python313-cuda13_0-sm120-avx512-magma", "pytorch-python313-cuda13_0-sm121-armv9-nightly",
        "pytorch-python313-cuda13_0-sm120-avx"})
    m.dir.write(std::string("repo/.flox/pkgs/") + stray + ".nix", "{ }: { }\n");

  ProcessResult doctor = m.ptbuild({"doctor"});
  CHECK(doctor.exit_code == 1);
  auto lines = finding_lines(doctor);
  auto has = [&](const std::string& name, int line, const std::string& text) {
    std::string prefix = m.repo() + "/.flox/pkgs/" + name + ".nix:" + std::to_string(line) + ": ";
    bool found = std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.starts_with(prefix) && l.find(text) != std::string::npos;
    });
    CHECK_MESSAGE(found, std::string(prefix + text + "\n" + doctor.out));
  };
  has(sm90, m.line_of(sm90, "fe5e41d7"), "nixpkgs pinned to fe5e41d7ffc0");
  has(sm86, m.line_of(sm86, "gpuArchSM"), "gpuArchSM = \"9.0\" in an sm86 recipe (gpuArchSM = \"8.6\")");
  has(sm120, m.line_of(sm120, "pname"),
      "does not match the file name (pname = \"pytorch210-python313-cuda13_0-sm120-avx2\")");
  has(sm110, m.line_of(sm110, ".pytorch"), "`pkgs.python3Packages.pytorch`");
  has(cpu, m.line_of(cpu, "cudaPackages"), "a cpu recipe with `cudaPackages`");
  has(sm89, 1, "a gpu_x86 recipe without `cudaPackages_13`");
  has(sm100, m.line_of(sm100, ".overrideAttrs"), "without cudaSupport = true given through .override");
  for (const char* stray :
       {"pytorch-python313-cuda13_0-sm120-avx512-magma", "pytorch-python313-cuda13_0-sm121-armv9-nightly",
        "pytorch-python313-cuda13_0-sm120-avx"})
    has(stray, 1, "stray recipe");
  // Nothing is said of the recipes that did not drift.
  std::set<std::string> touched{sm90,
                                sm86,
                                sm120,
                                sm110,
                                cpu,
                                sm89,
                                sm100,
                                "pytorch-python313-cuda13_0-sm120-avx512-magma",
                                "pytorch-python313-cuda13_0-sm121-armv9-nightly",
                                "pytorch-python313-cuda13_0-sm120-avx"};
  for (const std::string& l : lines) {
    std::string file = l.substr(0, l.find(".nix:"));
    CHECK_MESSAGE(touched.count(file.substr(file.rfind('/') + 1)), l);
  }

  // A hand-written recipe (no generated marker) is left alone unless forced.
  std::string hand = "pytorch-python313-cuda13_0-sm103-avx2";
  m.dir.write("repo/.flox/pkgs/" + hand + ".nix", "# written by hand\n{ }: { }\n");
  ProcessResult write = m.ptbuild({"recipes", "render", "--write"});
  REQUIRE(write.exit_code == 0);
  CHECK(write.out.find("left as is " + m.repo() + "/.flox/pkgs/" + hand + ".nix: not generated by ptbuild") !=
        std::string::npos);
  CHECK(m.recipe(hand) == "# written by hand\n{ }: { }\n");
  CHECK(m.recipe(sm86).find("gpuArchSM = \"8.6\"") != std::string::npos);  // generated: rewritten
  REQUIRE(m.ptbuild({"recipes", "render", "--write", "--force"}).exit_code == 0);
  CHECK(m.recipe(hand).find("gpuArchSM = \"10.3\"") != std::string::npos);
  for (const char* stray :
       {"pytorch-python313-cuda13_0-sm120-avx512-magma", "pytorch-python313-cuda13_0-sm121-armv9-nightly",
        "pytorch-python313-cuda13_0-sm120-avx"})
    std::filesystem::remove(m.repo() + "/.flox/pkgs/" + stray + ".nix");
  CHECK(m.ptbuild({"doctor"}).exit_code == 0);
}

TEST_CASE("recipes: a missing template or a bad matrix is a clear error") {
  MatrixRepo m;
  std::filesystem::remove(m.repo() + "/templates/cpu.nix");
  ProcessResult r = m.ptbuild({"recipes", "render"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("cannot read template") != std::string::npos);
  CHECK(r.err.find("templates/cpu.nix") != std::string::npos);
  std::string cfg = read_file(m.config());
  cfg.replace(cfg.find("arm_archs = [\"sm110\", \"sm121\"]"), 30, "arm_archs = [\"sm999\"]");
  m.dir.write("ptbuild.toml", cfg);
  ProcessResult bad = m.ptbuild({"doctor"});
  CHECK(bad.exit_code == 2);
  CHECK_MESSAGE(
      bad.err.find("repo.matrix.arm_archs: 'sm999' is an architecture of no CUDA version of the matrix") !=
          std::string::npos,
      bad.err);
}

TEST_CASE("recipes: several CUDA versions with their own pins - and per-architecture text in the templates") {
  TempDir dir;
  dir.write(
      "repo/templates/gpu.nix",
      "# PyTorch for @GPU_NAME@ (@GPU_ARCH@) with CUDA @CUDA_DOTTED@\n"
      "{ pkgs ? import (fetchTarball \"https://github.com/NixOS/nixpkgs/archive/@NIXPKGS@.tar.gz\") {} }:\n"
      "let gpuArchSM = \"@GPU_ARCH_SM@\"; cpuFlags = [ @CPU_FLAGS@ ]; in\n"
      "(pkgs.python3Packages.torch.override { cudaSupport = true; gpuTargets = [ gpuArchSM ]; }).overrideAttrs (o: {\n"
      "  pname = \"@PNAME@\";\n"
      "  overlay = final: prev: { cudaPackages = final.@CUDA_PACKAGES@; };\n"
      "  preConfigure = ''echo \"Building for @GPU_NAME@\"'';\n"
      "})\n");
  dir.write(
      "repo/templates/cpu.nix",
      "{ pkgs ? import (fetchTarball \"https://github.com/NixOS/nixpkgs/archive/@NIXPKGS@.tar.gz\") {} }:\n"
      "pkgs.python3Packages.torch.overrideAttrs (o: { pname = \"@PNAME@\"; })\n");
  std::string cfg =
      "[[repo]]\nname = \"pytorch\"\npath = \"" + dir / "repo" +
      "\"\n"
      "[repo.matrix]\nnixpkgs = \"6a030d535719c5190187c4cec156f335e95e3211\"\n"
      "x86_isas = [\"avx2\"]\narm_isas = [\"armv9\"]\narch_isas = { sm61 = [\"avx2\"] }\ncpu_isas = [\"avx2\"]\n"
      "templates = { gpu_x86 = \"templates/gpu.nix\", gpu_arm = \"templates/gpu.nix\", cpu = \"templates/cpu.nix\" }\n"
      "[repo.matrix.isa_flags]\navx2 = [\"-mavx2\", \"-mfma\"]\narmv9 = [\"-march=armv9-a\"]\n"
      "[repo.matrix.arch_text]\nsm61 = { GPU_NAME = \"GTX 1080\" }\nsm90 = { GPU_NAME = \"H100\" }\n"
      "[[repo.matrix.cuda]]\nversion = \"12_8\"\nnixpkgs = \"0182a361324364ae3f436a63005877674cf45efb\"\n"
      "cuda_packages = \"cudaPackages_12_8\"\narchs = [\"sm61\", \"sm90\"]\n"
      "[[repo.matrix.cuda]]\nversion = \"13_0\"\ncuda_packages = \"cudaPackages_13\"\narchs = [\"sm90\"]\n";
  dir.write("ptbuild.toml", cfg);
  auto ptbuild = [&](std::vector<std::string> args) {
    return run_ptbuild(dir / "ptbuild.toml", std::move(args));
  };
  ProcessResult render = ptbuild({"recipes", "render", "--json"});
  REQUIRE_MESSAGE(render.exit_code == 0, render.err);
  CHECK(json::parse(render.out)["created"].size() ==
        6);  // 12_8: sm61 avx2, sm90 avx2+armv9; 13_0: sm90 avx2+armv9; cpu avx2
  std::string pkgs = dir / "repo/.flox/pkgs/";
  std::string sm61 = read_file(pkgs + "pytorch-python313-cuda12_8-sm61-avx2.nix");
  CHECK(sm61.find("# PyTorch for GTX 1080 (sm61) with CUDA 12.8\n") != std::string::npos);
  CHECK(sm61.find("archive/0182a361324364ae3f436a63005877674cf45efb.tar.gz") != std::string::npos);
  CHECK(sm61.find("final.cudaPackages_12_8;") != std::string::npos);
  CHECK(sm61.find("cpuFlags = [ \"-mavx2\" \"-mfma\" ]") != std::string::npos);
  std::string sm90 = read_file(pkgs + "pytorch-python313-cuda13_0-sm90-armv9.nix");
  CHECK(sm90.find("echo \"Building for H100\"") != std::string::npos);
  CHECK(sm90.find("archive/6a030d535719c5190187c4cec156f335e95e3211.tar.gz") !=
        std::string::npos);  // the matrix's pin
  CHECK(sm90.find("final.cudaPackages_13;") != std::string::npos);
  CHECK(read_file(pkgs + "pytorch-python313-cpu-avx2.nix").find("6a030d535719c5190187c4cec156f335e95e3211") !=
        std::string::npos);
  ProcessResult doctor = ptbuild({"doctor"});
  CHECK_MESSAGE(doctor.exit_code == 0, doctor.out);
  CHECK(ptbuild({"recipes", "plan"}).exit_code == 0);

  // A template asking for text one architecture lacks: a clear error, nothing written.
  cfg.replace(cfg.find("sm61 = { GPU_NAME = \"GTX 1080\" }\n"), 33, "");
  dir.write("ptbuild.toml", cfg);
  std::filesystem::remove_all(pkgs);
  ProcessResult lacking = ptbuild({"recipes", "render"});
  CHECK(lacking.exit_code == 2);
  CHECK_MESSAGE(
      lacking.err.find(
          "template templates/gpu.nix uses @GPU_NAME@, which the matrix gives no value for "
          "pytorch-python313-cuda12_8-sm61-avx2 (per-architecture text goes in [repo.matrix.arch_text.sm61])") !=
          std::string::npos,
      lacking.err);
  CHECK(!std::filesystem::exists(pkgs));
}
