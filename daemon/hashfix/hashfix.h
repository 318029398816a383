// Repairing wrong fixed-output hashes in a build repo's recipes (docs/hash-repair.md).
//
// Runs on the scheduler's repair thread, one repair at a time (it reads the repo's recipes and
// runs git and `nix show-derivation`): two jobs that hit the same mismatch cannot interleave, the
// second finds the hash already repaired and simply builds again. It touches only files and
// commands, never the daemon's state. A recipe edited while a repair runs is read again before
// it is replaced, so the edit is kept.
#pragma once

#include <string>
#include <vector>

#include "core/hash_mismatch.h"

namespace ptbuild {

struct HashFix {
  std::string drv;
  std::string file;  // relative to the repo
  int line = 0;
  std::string old_text;
  std::string new_text;
};

struct RepairResult {
  enum class Outcome { repaired, already_repaired, failed };
  Outcome outcome = Outcome::failed;
  std::vector<HashFix> fixes;
  std::string message;  // what was done, or why nothing could be
};

struct HashfixOptions {
  std::string repo_path;
  std::string nix_program = "nix";  // for `nix show-derivation`
  bool commit = false;              // git-commit the repaired files
};

RepairResult repair_hashes(const HashfixOptions& options, const std::vector<HashMismatch>& mismatches);

// The fixed-output derivations (sources: fetchurl, fetchgit, fetchTarball…) in the closure of a
// recipe's derivation, to realise before the long build so that a wrong pinned hash is met and
// repaired in seconds instead of after hours (docs/hash-repair.md). Blocking (nix eval, nix
// show-derivation): run it off the event loop. `error` says why they could not be listed (a
// callPackage-style recipe that does not evaluate alone, say); then the build goes ahead as is.
struct SourceInputs {
  std::vector<std::string> drvs;
  std::string error;
};
SourceInputs fixed_output_inputs(const std::string& nix_program, const std::string& recipe_path,
                                 const std::string& cwd);

}  // namespace ptbuild
