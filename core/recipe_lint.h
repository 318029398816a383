// `ptbuild doctor`: the drifts that creep into a matrix of hand-copied recipes (SPEC §2 names,
// the seeds' CUDA fix pattern). Pure: each check reads a recipe's text and its name.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/recipe_matrix.h"

namespace ptbuild {

struct LintFinding {
  std::string file;
  int line = 1;
  std::string problem;
  std::string hint;
  std::string to_string() const { return file + ":" + std::to_string(line) + ": " + problem + " (" + hint + ")"; }
};

struct LintRules {
  std::string family;        // with pname_prefix: the pname may replace "<family>-" by the prefix
  std::string pname_prefix;
  std::map<std::string, std::string> gpu_archs;  // sm90 -> "9.0"; otherwise derived from the name
  std::map<RecipeKind, std::vector<std::string>> require;
  std::map<RecipeKind, std::vector<std::string>> forbid;
};

// The kind a variant's name says it is; nullopt for names with unknown axes.
std::optional<RecipeKind> recipe_kind_of(const std::string& name);

std::vector<LintFinding> lint_recipe(const std::string& file, const std::string& name, const std::string& text,
                                     const LintRules& rules);

// nixpkgs pins that differ between recipes: every recipe whose pin is not the one most use.
std::vector<LintFinding> lint_pins(const std::vector<std::pair<std::string, std::string>>& file_texts);

}  // namespace ptbuild
