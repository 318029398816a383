// What changed since a variant's last good build (docs/changes.md): the facts are gathered here,
// the differences computed by core/changes. Two halves: what the store knows, read on the loop,
// and what Nix and git know, asked off it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/changes.h"
#include "core/job.h"

namespace ptbuild {

class Store;

struct ChangesQuery {
  std::string nix_program;
  std::string repo_path;
  std::string recipe;  // relative to the repo
  Job build;
  std::optional<Job> since;          // the good build compared with
  std::vector<std::string> actions;  // ptbuild's own in between
};

// The store's half (on the loop): the build, the good one before it (or `since`, when given), and
// ptbuild's hash repairs and builder change in between. Throws std::runtime_error naming what is
// wrong (`since` is not an earlier build of the same variant).
ChangesQuery changes_query(Store& store, const std::string& nix_program, const Job& build,
                           std::optional<int64_t> since = std::nullopt);

// Nix's and git's half: `nix show-derivation -r` of both derivations and the commits in between
// that touched the recipe or a file it reads. Blocking: off the loop.
Changes what_changed(const ChangesQuery& query);

}  // namespace ptbuild
