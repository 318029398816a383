// The exact build and publish commands of each backend (docs/backends.md). Pure: it only builds argv.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

namespace ptbuild {

// Where a build writes its output itself: the attempt's plain log, appended to (the daemon's own
// lines are in it too) and read back by the runner. Nothing of the output then waits in a pipe
// or in the daemon, a daemon that is busy never holds a build up, and `tail -f` follows the
// build's own writes. Of what the runner has read, all but the newest `keep` bytes are punched
// out of the file (its size stays, its blocks are freed): the disk guard, and no plain copy at
// all with keep 0.
struct OutputFile {
  std::string path;
  uint64_t keep = std::numeric_limits<uint64_t>::max();
};

struct BuildCommand {
  std::vector<std::string> argv;
  std::string cwd;
  std::string result_link;           // the symlink to the output the build leaves behind
  std::optional<OutputFile> output;  // else stdout and stderr go to a pipe the runner reads
  // cgroup.procs files its first process joins before it runs the command (docs/resources.md).
  std::vector<std::string> join_cgroups;
};

struct BuildTarget {
  std::string package;      // the variant's name: "pytorch-python313-cuda13_0-sm90-avx512"
  std::string repo_path;    // absolute
  std::string recipe;       // relative to the repo
  std::string results_dir;  // <state_dir>/results
};

// flox: `flox build -d <repo> <package>` in the repo, leaving <repo>/result-<package>.
// nix:  `nix build -f <recipe> -o <results>/<package> -L --keep-going`, the link a GC root.
BuildCommand build_command(const Config::Backend& backend, const BuildTarget& target);

// flox: `flox publish -d <repo> [-o <org>] <package>` in the repo.
// nix:  `nix copy --to <store> <out>` (publish.store, e.g. file:///srv/cache); with
//       publish.signing_key `nix store sign -r` first, and `provenance_file` (if it exists) copied
//       to <cache>/provenance/ for a file:// cache.
BuildCommand publish_command(const Config::Backend& backend, const Config::Publish& publish,
                             const BuildTarget& target, const std::string& out_path,
                             const std::string& provenance_file = "");

// The `nix` program the daemon's helper commands use (hash repair, the builder probe): the nix
// backend's program, else `nix` from PATH (flox builds with the same Nix underneath).
std::string nix_program(const Config::Backend& backend);

// A tiny build that tells whether Nix can build on this machine at all: a derivation with Nix's
// built-in `buildenv` builder, so it needs no binary cache, no nixpkgs and no /bin/sh (the
// sandbox may hide it; real recipes do not use it), but still needs build users, a writable
// store or a nix-daemon like every build. `nonce` makes each probe a new derivation, so it
// really builds.
BuildCommand builder_probe_command(const Config::Backend& backend, const std::string& nonce);

// Makes `command` build on `builder` and nowhere else (docs/fleet.md): Nix with that machine as its
// only builder and no local slots (nix: --builders '<line>' --max-jobs 0; flox: the same through
// NIX_CONFIG in `env`, which flox's Nix reads). For the local builder of a configured fleet, no
// builders at all, so a machines file in /etc/nix cannot send the build elsewhere.
void place_on_builder(const Config::Backend& backend, const BuilderSpec& builder, BuildCommand& command,
                      std::map<std::string, std::string>& env, const std::string& inherited_nix_config);

// Gives the build `cores` cores (Nix's `cores` setting, NIX_BUILD_CORES in the build): nix:
// --cores N; flox: the same through NIX_CONFIG in `env` (after what place_on_builder put there).
void give_cores(const Config::Backend& backend, int cores, BuildCommand& command,
                std::map<std::string, std::string>& env, const std::string& inherited_nix_config);

// What a remote builder has (core/resources.h's remote_facts_script, over the ssh Nix reaches it by).
BuildCommand machine_facts_command(const BuilderSpec& builder);
// Nix's own GC on a remote builder's store, over the ssh it is reached by, freeing at most
// `max_free` bytes; what its builds use is rooted there by its nix-daemon.
BuildCommand remote_gc_command(const BuilderSpec& builder, uint64_t max_free);

// What a build needs of a machine, read from its derivation: `system` and
// `requiredSystemFeatures`, printed as JSON {"system":…,"features":[…]}. The recipe's path
// comes through the environment (PTBUILD_RECIPE), so no quoting can break the expression.
BuildCommand derivation_needs_command(const Config::Backend& backend, const std::string& recipe_path,
                                      std::map<std::string, std::string>& env);

// The verification probe run on a remote builder (docs/fleet.md): the artifact is copied into its
// store (nix copy), then `probe` runs there over ssh with the probe script on its stdin (the
// template's {probe} is /dev/stdin there). `env` is the probe's environment (PYTHONPATH).
BuildCommand remote_probe_command(const Config::Backend& backend, const BuilderSpec& builder,
                                  const std::string& out_path, const std::vector<std::string>& probe_argv,
                                  const std::map<std::string, std::string>& env,
                                  const std::string& probe_path);

// Realises the given derivations (a build's sources, before the build itself): what fails, fails
// with Nix's own messages (a hash mismatch among them), --keep-going so every wrong hash shows.
BuildCommand realise_command(const Config::Backend& backend, const std::vector<std::string>& drvs);

// Whether a remote builder answers: `nix store ping` over its store URI.
BuildCommand builder_ping_command(const Config::Backend& backend, const BuilderSpec& builder);

}  // namespace ptbuild
