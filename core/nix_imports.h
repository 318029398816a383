// The repo files a recipe reads: the relative path literals in its Nix text (./lib/x.nix,
// ../common, ./patches/fix.patch). Pure; the fingerprint follows them through the repo.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ptbuild {

std::vector<std::string> relative_paths_in(std::string_view nix_text);

}  // namespace ptbuild
