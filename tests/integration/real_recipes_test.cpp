// `ptbuild doctor` and `ptbuild recipes plan` on the user's real recipes: the 237 of
// build-pytorch's pytorch-2.10-python313 branch, copies of them with planted drift, and the parent
// of each commit where the maintainer fixed recipes by hand (tests/fixtures/build-pytorch.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

const std::string kBranch = "origin/pytorch-2.10-python313";

// A clone of the real repo at one commit, with a config naming it.
struct RealRepo {
  TempDir dir;
  std::string repo() const { return dir / "build-pytorch"; }
  std::string pkgs() const { return repo() + "/.flox/pkgs/"; }
  explicit RealRepo(const std::string& commit) {
    ProcessResult clone = run_process({"/usr/bin/git", "clone", "-q", "--no-checkout",
                                       source_dir() + "/tests/fixtures/build-pytorch.bundle", repo()});
    REQUIRE_MESSAGE(clone.exit_code == 0, clone.err);
    ProcessResult checkout = git({"checkout", "-q", commit});
    REQUIRE_MESSAGE(checkout.exit_code == 0, checkout.err);
    use_matrix(false);
  }
  ProcessResult git(std::vector<std::string> args) const {
    args.insert(args.begin(), {"/usr/bin/git", "-C", repo()});
    return run_process(args);
  }
  // The example config of config/ (the whole matrix of the branch), or the repo alone.
  void use_matrix(bool matrix, const std::string& extra = "") const {
    std::string cfg = matrix ? read_file(source_dir() + "/config/build-pytorch-2.10.toml")
                             : "[[repo]]\nname = \"pytorch\"\npath = \"/srv/build-pytorch\"\n";
    cfg.replace(cfg.find("/srv/build-pytorch"), 18, repo());
    if (!extra.empty()) cfg.replace(cfg.find("\n", cfg.find("path = ")) + 1, 0, extra + "\n");
    dir.write("ptbuild.toml", cfg);
  }
  // The rest of doctor's rules, on a branch whose -j32 test 1 looks at.
  void disable_parallelism_rule() const {
    std::string cfg = read_file(dir / "ptbuild.toml");
    cfg.replace(cfg.find("doctor_disable = []"), 19, "doctor_disable = [\"hardcoded-parallelism\"]");
    dir.write("ptbuild.toml", cfg);
  }
  ProcessResult ptbuild(std::vector<std::string> args) const {
    return run_ptbuild(dir / "ptbuild.toml", std::move(args));
  }
  json doctor_json() const {
    ProcessResult r = ptbuild({"doctor", "--json"});
    REQUIRE_MESSAGE((r.exit_code == 0 || r.exit_code == 1), r.err);
    return json::parse(r.out);
  }
  void edit(const std::string& name, const std::string& from, const std::string& to) const {
    REQUIRE_MESSAGE(replace_in_file(pkgs() + name + ".nix", from, to, /*every=*/true), (name + ": " + from));
  }
};

// file name -> rules found in it
std::map<std::string, std::set<std::string>> rules_by_file(const json& doctor) {
  std::map<std::string, std::set<std::string>> out;
  for (const json& f : doctor["findings"]) {
    std::string file = f["file"];
    out[file.substr(file.rfind('/') + 1)].insert(f["rule"].get<std::string>());
  }
  return out;
}

}  // namespace

TEST_CASE(
    "doctor: the real 237-recipe branch with its matrix has no problems - and recipes plan misses nothing") {
  RealRepo real(kBranch);
  // Without a matrix only the pnames stand out: the branch's pytorch210- prefix, which only a
  // matrix can allow. The four nixpkgs pins (one per CUDA version) and gpuArchNum = "8.6" fed to
  // gpuTargets are right and said nothing of.
  // And the parallelism every recipe fixes by hand (docs/resources.md): ninjaFlags = [ "-j32" ] and
  // export MAX_JOBS=32, whatever cores the build is given.
  json bare = real.doctor_json();
  CHECK(bare["checked"] == 237);
  REQUIRE(bare["groups"].size() == 2);
  CHECK(bare["groups"][0]["rule"] == "pname");
  CHECK(bare["groups"][0]["count"] == 127);
  CHECK(bare["groups"][1]["rule"] == "hardcoded-parallelism");
  std::set<std::string> fixed_j, fixed_max_jobs;
  for (const json& f : bare["findings"])
    if (f["rule"] == "hardcoded-parallelism")
      (f["problem"].get<std::string>().starts_with("-j32") ? fixed_j : fixed_max_jobs).insert(f["file"]);
  CHECK(fixed_j.size() == 237);
  CHECK(fixed_max_jobs.size() == 237);

  real.use_matrix(true);
  real.disable_parallelism_rule();
  ProcessResult doctor = real.ptbuild({"doctor"});
  CHECK_MESSAGE(doctor.exit_code == 0, doctor.out);
  CHECK(doctor.out == "no problems in 237 recipe(s); not checked in pytorch: hardcoded-parallelism\n");
  ProcessResult plan = real.ptbuild({"recipes", "plan", "--json"});
  CHECK_MESSAGE(plan.exit_code == 0, plan.out);
  json repo = json::parse(plan.out)["repos"][0];
  CHECK(repo["missing"].empty());
  CHECK(repo["stray"].empty());
  CHECK(repo["drifted"].empty());
  CHECK(repo["untemplated"] == 237);

  // A variant the matrix asks for and the branch lacks: listed without a template, exit 1.
  std::filesystem::remove(real.pkgs() + "pytorch-python313-cuda13_1-sm103-avx2.nix");
  ProcessResult missing = real.ptbuild({"recipes", "plan"});
  CHECK(missing.exit_code == 1);
  CHECK_MESSAGE(
      missing.out.find(
          "  missing  .flox/pkgs/pytorch-python313-cuda13_1-sm103-avx2.nix  (gpu_x86; no template)") !=
          std::string::npos,
      missing.out);
}

TEST_CASE(
    "doctor: drift planted into real recipes is found and grouped - and a rule can be turned off per repo") {
  RealRepo real(kBranch);
  const std::string pin = "pytorch-python313-cuda13_0-sm86-avx512",
                    arch = "pytorch-python313-cuda12_9-sm89-avx2",
                    off = "pytorch-python313-cuda13_1-sm100-armv9",
                    attr = "pytorch-python313-cuda12_8-sm75-avx512bf16",
                    flags = "pytorch-python313-cuda13_1-sm90-avx512";
  // The 12_8 pin in a 13_0 recipe; an architecture value of another GPU; CUDA not enabled;
  // pytorch for torch; an avx512 recipe without -mavx512bw.
  real.edit(pin, "6a030d535719c5190187c4cec156f335e95e3211", "0182a361324364ae3f436a63005877674cf45efb");
  real.edit(arch, "gpuArchSM = \"8.9\"", "gpuArchSM = \"9.0\"");
  real.edit(off, "cudaSupport = true", "cudaSupport = false");
  real.edit(attr, "python3Packages.torch.override", "python3Packages.pytorch.override");
  real.edit(flags, "\"-mavx512bw\" ", "");

  // Without a matrix, the odd cpuFlags are one side of a split, named with the other side.
  json bare = real.doctor_json();
  std::set<std::string> split;
  for (const json& f : bare["findings"])
    if (f["rule"] == "flags-split") split.insert(f["problem"].get<std::string>());
  CHECK(split ==
        std::set<std::string>{
            "1 avx512 recipe(s) have cpuFlags [ -mavx512dq -mavx512f -mavx512vl -mfma ]",
            "31 avx512 recipe(s) have cpuFlags [ -mavx512bw -mavx512dq -mavx512f -mavx512vl -mfma ]"});
  real.use_matrix(true);
  real.disable_parallelism_rule();

  json doctor = real.doctor_json();
  std::map<std::string, std::set<std::string>> expected{{pin + ".nix", {"pin"}},
                                                        {arch + ".nix", {"arch-value"}},
                                                        {off + ".nix", {"cuda-off"}},
                                                        {attr + ".nix", {"torch-attr"}},
                                                        {flags + ".nix", {"isa-flags"}}};
  CHECK(rules_by_file(doctor) == expected);
  for (const json& f : doctor["findings"]) {
    CHECK(f["line"].get<int>() > 1);  // at the line to change
    CHECK(!f["hint"].get<std::string>().empty());
  }
  CHECK(doctor["groups"].size() == 5);

  ProcessResult text = real.ptbuild({"doctor"});
  CHECK(text.exit_code == 1);
  CHECK_MESSAGE(text.out.find("pin: a nixpkgs pin other than the matrix declares (1)\n  " + real.pkgs() +
                              pin + ".nix:") != std::string::npos,
                text.out);
  CHECK(text.out.find("(the matrix pins cuda13_0 to 6a030d535719)") != std::string::npos);
  CHECK(text.out.find("gpuArchSM = \"9.0\" in an sm89 recipe (gpuArchSM = \"8.9\")") != std::string::npos);
  CHECK(
      text.out.find(
          "cpuFlags are not the matrix's avx512 flags (cpuFlags = [ \"-mavx512f\" \"-mavx512dq\" \"-mavx512vl\" "
          "\"-mavx512bw\" \"-mfma\" ])") != std::string::npos);
  CHECK(text.out.ends_with(
      "5 problem(s) of 5 kind(s) in 237 recipe(s); not checked in pytorch: hardcoded-parallelism\n"));

  std::string cfg = read_file(real.dir / "ptbuild.toml");
  const std::string parallelism = "doctor_disable = [\"hardcoded-parallelism\"]";
  cfg.replace(cfg.find(parallelism), parallelism.size(),
              "doctor_disable = [\"hardcoded-parallelism\", \"torch-attr\"]");
  real.dir.write("ptbuild.toml", cfg);
  json quiet = real.doctor_json();
  expected.erase(attr + ".nix");
  CHECK(rules_by_file(quiet) == expected);
  CHECK(quiet["disabled"]["pytorch"] == json::array({"hardcoded-parallelism", "torch-attr"}));
  CHECK(real.ptbuild({"doctor"})
            .out.ends_with("4 problem(s) of 4 kind(s) in 237 recipe(s); not checked in pytorch: "
                           "hardcoded-parallelism, torch-attr\n"));

  const std::string disabled = "doctor_disable = [\"hardcoded-parallelism\", \"torch-attr\"]";
  cfg.replace(cfg.find(disabled), disabled.size(), "doctor_disable = [\"torch_attr\"]");
  real.dir.write("ptbuild.toml", cfg);
  ProcessResult bad = real.ptbuild({"doctor"});
  CHECK(bad.exit_code == 2);
  CHECK_MESSAGE(
      bad.err.find("repo.doctor_disable: no doctor rule is named 'torch_attr' (scan, stray, pname,") !=
          std::string::npos,
      bad.err);
}

TEST_CASE("doctor: on the parent of each hand fix in the real history it flags what the fix changed") {
  struct Fix {
    const char* commit;
    const char* branch;
    const char* changed;  // the removed lines that are the fix (a regex)
    const char* rule;
  };
  const Fix fixes[] = {
      {"b8d708d", "2.10", "gpuArchSM = \"sm_1", "arch-spelling"},  // sm_110 -> 11.0, sm_121 -> 12.1
      {"d052e0b", "2.9", "gpuArch", "arch-spelling"},              // 8.6 not sm_86 (30 recipes)
      {"c67bc52", "2.9", "python3Packages\\.pytorch", "torch-attr"},
      {"f3e1d8b", "2.10", "-mfma", "isa-flags"},             // SIGILL on Ivy Bridge
      {"17312f6", "2.9", "cudaSupport = true", "cpu-cuda"},  // CUDA config in CPU builds
      {"2632912", "2.10", "", "arch-platform"},              // x86 variants of ARM-only GPUs, deleted
  };
  for (const Fix& fix : fixes) {
    CAPTURE(fix.commit);
    RealRepo real(std::string(fix.commit) + "^");
    // old-side line numbers of the fix's removed lines, per file
    ProcessResult diff =
        real.git({"diff", "-U0", std::string(fix.commit) + "^", fix.commit, "--", ".flox/pkgs"});
    REQUIRE(diff.exit_code == 0);
    std::map<std::string, std::set<int>> removed;
    std::istringstream in(diff.out);
    std::string file;
    int old_line = 0;
    bool deleted = false;
    for (std::string l; std::getline(in, l);) {
      if (l.starts_with("diff --git")) deleted = false;
      if (l.starts_with("deleted file")) deleted = true;
      if (l.starts_with("--- a/")) file = l.substr(l.rfind('/') + 1);
      if (l.starts_with("@@ -")) old_line = std::stoi(l.substr(4));
      if (l.starts_with("-") && !l.starts_with("---")) {
        if (deleted && std::string(fix.changed).empty())
          removed[file].insert(1);
        else if (!deleted && std::regex_search(l, std::regex(fix.changed)))
          removed[file].insert(old_line);
        ++old_line;
      }
    }
    REQUIRE(!removed.empty());
    json doctor = real.doctor_json();
    for (const auto& [name, lines] : removed) {
      CAPTURE(name);
      bool flagged = false;
      for (const json& f : doctor["findings"]) {
        std::string path = f["file"];
        flagged = flagged ||
                  (path.ends_with("/" + name) && f["rule"] == fix.rule && lines.count(f["line"].get<int>()));
      }
      CHECK_MESSAGE(flagged, doctor.dump(1));
    }
  }
}

TEST_CASE(
    "doctor: never advises harm - the real branch before its 44-variant matrix, on the broken pin 3 to 2") {
  // At 73046aa three cuda13_0 recipes pin fe5e41d (which the maintainer then deleted as the
  // wrong pin) and two pin 6a030d5. The majority is the broken one.
  RealRepo real("73046aa");
  const std::string right = "pytorch-python313-cuda13_0-sm120-avx512.nix";
  json bare = real.doctor_json();
  for (const json& f : bare["findings"]) {
    CHECK(f["rule"] != "pin");  // without a declared pin, no recipe is told which to take
    CHECK(f["hint"].get<std::string>().find("use the same pin") == std::string::npos);
  }
  CHECK(rules_by_file(bare)[right].count("pin-split") == 1);

  // With the pin declared, the three on the old one are named, and only they.
  real.use_matrix(
      false,
      "[repo.matrix]\nx86_isas = [\"avx\", \"avx512\"]\narm_isas = [\"armv8_2\", \"armv9\"]\n"
      "arch_isas = { sm110 = [\"armv8_2\", \"armv9\"] }\n[[repo.matrix.cuda]]\nversion = \"13_0\"\n"
      "nixpkgs = \"6a030d535719c5190187c4cec156f335e95e3211\"\narchs = [\"sm110\", \"sm120\"]");
  std::set<std::string> pinned;
  json declared = real.doctor_json();
  for (const json& f : declared["findings"]) {
    CHECK(f["rule"] != "pin-split");
    if (f["rule"] == "pin") {
      std::string file = f["file"];
      pinned.insert(file.substr(file.rfind('/') + 1));
      CHECK(f["hint"] == "the matrix pins cuda13_0 to 6a030d535719");
    }
  }
  CHECK(pinned == std::set<std::string>{"pytorch-python313-cuda13_0-sm110-armv8_2.nix",
                                        "pytorch-python313-cuda13_0-sm110-armv9.nix",
                                        "pytorch-python313-cuda13_0-sm120-avx.nix"});
}
