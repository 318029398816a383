// Finding the packages of a build repo (docs/concepts.md): <name>.nix and <name>/default.nix under the
// recipe folder are packages; a/b/default.nix is package "a.b"; any other .nix file in a
// sub-folder (lib/mkPyTorchCUDA.nix) is shared code, not a package.
#pragma once

#include <string>
#include <vector>

namespace ptbuild {

struct Recipe {
  std::string package;  // "pytorch-python313-cuda13_0-sm90-avx512", "a.b"
  std::string file;     // relative to the repo: ".flox/pkgs/a/b/default.nix"
};

struct RecipeScan {
  std::vector<Recipe> recipes;  // sorted by package name
  std::string error;            // "" when the folder could be read
};

RecipeScan scan_recipes(const std::string& repo_path, const std::string& recipes_dir);

}  // namespace ptbuild
