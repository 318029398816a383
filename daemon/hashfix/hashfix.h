// Repairing wrong fixed-output hashes in a build repo's recipes (docs/hash-repair.md).
//
// Runs on the scheduler's repair thread, one repair at a time (it reads the repo's recipes and
// runs git and `nix show-derivation`): two jobs that hit the same mismatch cannot interleave, the
// second finds the hash already repaired and simply builds again. It touches only files and
// commands, never the daemon's state. A recipe edited while a repair runs is read again before
// it is replaced, so the edit is kept.
#pragma once

#include <cstdint>
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
  // The repair's journal: written before the first recipe is, and removed by the daemon once the
  // history holds the repair, so that a kill -9 in between loses nothing ("": none).
  std::string journal;
  int64_t job_id = 0;
  std::string variant;
};

RepairResult repair_hashes(const HashfixOptions& options, const std::vector<HashMismatch>& mismatches);

// A repair the daemon was stopped in the middle of, as its journal tells it, finished: the fixes
// that are in the recipes now (written before the stop), committed where hashfix.commit was on
// and git still shows them uncommitted. Blocking (git): run it before serving.
struct InterruptedRepair {
  std::string journal;  // its file, to remove once the history holds `written`
  int64_t job_id = 0;
  std::string variant;
  std::vector<HashFix> written;
  std::string message;  // what was found and done, for the daemon's log
};
std::vector<InterruptedRepair> finish_interrupted_repairs(const std::string& journal_dir);
// Where the journals live: <state_dir>/repairs/job-<id>-<round>.json, one per repair round, so
// that removing one round's never removes the next's.
inline std::string repair_journal_dir(const std::string& state_dir) {
  return state_dir + "/repairs";
}
inline std::string repair_journal(const std::string& state_dir, int64_t job_id, int round) {
  return repair_journal_dir(state_dir) + "/job-" + std::to_string(job_id) + "-" + std::to_string(round) +
         ".json";
}

// The fixed-output derivations (sources: fetchurl, fetchgit, fetchTarball…) in the closure of a
// recipe's derivation, to realise before the long build so that a wrong pinned hash is met and
// repaired in seconds instead of after hours (docs/hash-repair.md). Blocking (nix eval, nix
// show-derivation): run it off the event loop. `error` says why they could not be listed (a
// callPackage-style recipe that does not evaluate alone, say); then the build goes ahead as is.
struct SourceInputs {
  std::string derivation;  // the recipe's own, evaluated on the way ("" where it did not evaluate)
  std::vector<std::string> drvs;
  std::string error;
};
SourceInputs fixed_output_inputs(const std::string& nix_program, const std::string& recipe_path,
                                 const std::string& cwd);

}  // namespace ptbuild
