// The steps around a build that touch the system: fingerprinting the recipe, the verification
// probe's command, and flox's publish preconditions. Kept apart from the dispatcher's logic.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "core/backend.h"
#include "core/config.h"
#include "core/job.h"
#include "core/variant.h"

namespace ptbuild {

struct VariantRecord;

// sha256 of a recipe file ("" if it cannot be read). Blocking: off the event loop.
std::string recipe_sha(const std::string& recipe_path);

// Writes the built-in probe to <state_dir>/probe.py (whole or not at: a probe that runs meanwhile
// reads the old one) and returns its path.
std::string install_probe(const std::string& state_dir);

// The probe's command for an artifact (docs/verification.md): the [verify] command template, or the default
// "{python} {probe}", where {python} is the artifact's own bin/python3 if it has one, else
// python3 with the artifact's site-packages on PYTHONPATH. Tokens are split on whitespace; no
// shell runs it.
BuildCommand probe_command(const Config& config, const VariantRecord& variant, const std::string& out_path,
                           const std::string& probe_path, std::map<std::string, std::string>& env);

// What the log of a build that was running when ptbuildd died already says, read from the disk
// (its last attempt): a failure that is the recipe's and cannot end otherwise (CUDA off in a GPU
// variant, an architecture nvcc or PyTorch does not know, an evaluation error). nullopt when the
// log settles nothing, and the build must run again.
std::optional<Failure> settled_failure(const std::string& log_path, const VariantAxes& axes);

// Where a bisect job builds its variant at commit `rev`: a git worktree of the build repo
// (docs/bisect.md), never the repo's checkout.
std::string bisect_worktree(const std::string& state_dir, const std::string& rev);

// The build repo's HEAD commit, or nullopt where it is no git checkout. Blocking: off the loop.
std::optional<std::string> head_commit(const std::string& repo_path);

// Why `flox publish` would refuse the repo (docs/backends.md), in words, or "" when it would not:
// tracked files changed, no upstream branch, HEAD not pushed.
std::string flox_publish_refusal(const std::string& repo_path);

}  // namespace ptbuild
