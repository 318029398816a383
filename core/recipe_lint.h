// `ptbuild doctor`: the drifts that creep into a matrix of hand-copied recipes (docs/concepts.md names,
// the seeds' CUDA fix pattern, the fixes in build-pytorch's own history). Pure: each check reads
// a recipe's text, its name and what [repo.matrix] expects of it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/recipe_matrix.h"

namespace ptbuild {

struct LintFinding {
  std::string rule;  // one of lint_rules()
  std::string file;
  int line = 1;
  std::string problem;
  std::string hint;
  std::string to_string() const {
    return file + ":" + std::to_string(line) + ": " + problem + " (" + hint + ")";
  }
};

struct LintRule {
  std::string_view name;   // "arch-value": what the config's doctor_disable and --json say
  std::string_view title;  // the heading its findings are grouped under
};
// Every rule, in the order doctor reports them.
const std::vector<LintRule>& lint_rules();
const LintRule* find_lint_rule(std::string_view name);

struct LintRules {
  std::string family;  // with pname_prefix: the pname may replace "<family>-" by the prefix
  std::string pname_prefix;
  std::map<std::string, std::string> gpu_archs;  // sm90 -> "9.0"; otherwise derived from the name
  std::map<RecipeKind, std::vector<std::string>> require;
  std::map<RecipeKind, std::vector<std::string>> forbid;
};

// The kind a variant's name says it is; nullopt for names with unknown axes.
std::optional<RecipeKind> recipe_kind_of(const std::string& name);

std::vector<LintFinding> lint_recipe(const std::string& file, const std::string& name,
                                     const std::string& text, const LintRules& rules,
                                     const RecipeExpectation& expect = {});

// A recipe's nixpkgs pin: the first 40-hex revision on a line that names nixpkgs.
struct NixpkgsPin {
  std::string rev;
  int line = 0;
};
std::optional<NixpkgsPin> find_nixpkgs_pin(const std::string& text);

// A recipe's cpuFlags list, and the line it starts on.
struct CpuFlags {
  std::vector<std::string> flags;
  int line = 0;
};
std::optional<CpuFlags> find_cpu_flags(const std::string& text);

// One value a recipe has, among recipes that should have the same one where the matrix declares
// none: the nixpkgs pin of a CUDA version's recipes, the cpuFlags of an ISA's.
struct GroupedValue {
  std::string file;
  int line = 0;
  std::string group;  // "cuda13_0", "avx512"
  std::string value;  // as the finding shows it
};
// For each group whose recipes differ, one finding per value, preferring none: the majority can
// be the broken one (build-pytorch at 73046aa). `rule` is "pin-split" or "flags-split"; `has`
// reads as in "3 cuda13_0 recipe(s) pin nixpkgs fe5e41d7ffc0".
std::vector<LintFinding> lint_splits(std::string_view rule, std::string_view has, std::string_view declare_as,
                                     const std::vector<GroupedValue>& values);

}  // namespace ptbuild
