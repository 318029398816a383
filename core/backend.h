// The exact build and publish commands of each backend (SPEC §5). Pure: it only builds argv.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"

namespace ptbuild {

struct BuildCommand {
  std::vector<std::string> argv;
  std::string cwd;
  std::string result_link;  // the symlink to the output the build leaves behind
};

struct BuildTarget {
  std::string package;     // the variant's name: "pytorch-python313-cuda13_0-sm90-avx512"
  std::string repo_path;   // absolute
  std::string recipe;      // relative to the repo
  std::string results_dir; // <state_dir>/results
};

// flox: `flox build -d <repo> <package>` in the repo, leaving <repo>/result-<package>.
// nix:  `nix build -f <recipe> -o <results>/<package> -L --keep-going`, the link a GC root.
BuildCommand build_command(const Config::Backend& backend, const BuildTarget& target);

// flox: `flox publish -d <repo> [-o <org>] <package>` in the repo.
// nix:  `nix copy --to <store> <out>` (publish.store, e.g. file:///srv/cache).
BuildCommand publish_command(const Config::Backend& backend, const Config::Publish& publish,
                             const BuildTarget& target, const std::string& out_path);

}  // namespace ptbuild
