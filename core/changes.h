// What changed between a variant's last good build and a later one (docs/changes.md): the
// derivations' differences (inputs by name and version, flags, source hashes), the build repo's
// commits in between that touched what the recipe reads, and ptbuild's own actions. Pure: the
// daemon gathers `nix show-derivation -r` and `git log` off the loop (daemon/changes) and this
// turns them into the differences and a summary of a few lines.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ptbuild {

// Nix's own split of a derivation name ("magma-2.9.0" -> "magma", "2.9.0"): the version begins
// at the first dash that a digit follows.
struct DrvName {
  std::string name;
  std::string version;
};
DrvName parse_drv_name(std::string_view name);
// "/nix/store/<hash>-magma-2.9.0.drv" -> "magma-2.9.0".
std::string store_path_name(std::string_view path);

struct DerivationDiff {
  // An input by name whose versions differ ("moved"), or that came ("added") or went ("removed").
  struct Version {
    std::string change;
    std::string name, before, after;
  };
  // A variable of the top derivation (cmakeFlags, TORCH_CUDA_ARCH_LIST…) whose words or lines
  // differ, store paths' hashes aside (those are the inputs' changes).
  struct Variable {
    std::string name;
    std::vector<std::string> added, removed;
  };
  // A fixed-output derivation (a source) of the same name and URL whose expected hash changed.
  struct Source {
    std::string name, url, before, after;
  };
  std::vector<Version> versions;
  std::vector<Variable> variables;
  std::vector<Source> sources;
  std::vector<std::string> files;  // plain store inputs (patches, scripts) whose content changed
  int rebuilt = 0;                 // derivations of the same name and version with other inputs
  bool same = false;               // the two derivations are one
};

// `before` and `after`: `nix show-derivation -r` of each build's derivation (path -> derivation);
// `before_drv` and `after_drv`: the two builds' own derivations in them.
DerivationDiff diff_derivations(const nlohmann::json& before, const std::string& before_drv,
                                const nlohmann::json& after, const std::string& after_drv);

struct RepoCommit {
  std::string sha;
  std::string subject;
  std::string author;
  std::string at;
  std::vector<std::string> files;  // of those the recipe reads
};

struct Changes {
  int64_t job = 0;
  std::string variant;
  std::optional<int64_t> since;  // the good build compared with; null when there is none
  std::optional<std::string> since_commit, commit;
  std::optional<DerivationDiff> derivation;  // null when a derivation is not known or gone
  std::string derivation_note;               // why it is null
  std::vector<RepoCommit> commits;           // oldest first
  std::string commits_note;                  // why none could be listed
  std::vector<std::string> actions;          // ptbuild's own: repairs, another builder
  std::vector<std::string> summary;          // a few lines, the most telling first
};

// The summary of a few lines: the versions that moved first (what a version_skew failure needs),
// then sources, flags, the commits and ptbuild's actions.
std::vector<std::string> summarize(const Changes& changes, size_t most = 6);

nlohmann::json to_json(const Changes& changes);
Changes changes_from_json(const nlohmann::json& j);

}  // namespace ptbuild
