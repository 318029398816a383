// What decides whether a variant must be rebuilt (docs/nightly.md): the derivation path where Nix can
// evaluate the recipe, else a hash of the recipe and the repo files it reads.
#pragma once

#include <map>
#include <string>

namespace ptbuild {

// The recipe and every file of the repo it reads through relative paths, followed through .nix
// files (a patch is read, not followed): path relative to the repo -> text. Files outside the repo
// are not read: they are not the repo's to change.
std::map<std::string, std::string> files_read(const std::string& repo_path, const std::string& recipe);

// "files:<sha256>" over files_read().
std::string file_fingerprint(const std::string& repo_path, const std::string& recipe);

}  // namespace ptbuild
