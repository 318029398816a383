// Repairing wrong fixed-output hashes in a build repo's recipes (SPEC §7).
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

}  // namespace ptbuild
