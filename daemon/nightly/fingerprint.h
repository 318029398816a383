// What decides whether a variant must be rebuilt (docs/nightly.md): the derivation path where Nix can
// evaluate the recipe, else a hash of the recipe and the repo files it reads.
#pragma once

#include <string>

namespace ptbuild {

// "files:<sha256>" over the recipe and every file of the repo it reads through relative paths,
// followed through .nix files (a patch is hashed, not followed). Files outside the repo are not
// read: they are not the repo's to change.
std::string file_fingerprint(const std::string& repo_path, const std::string& recipe);

}  // namespace ptbuild
