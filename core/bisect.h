// Bisection over the build repo's history (docs/bisect.md): which commit to try next, and when
// the first bad one is known. Pure; daemon/bisect evaluates and builds the commits it picks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ptbuild {

struct BisectCommit {
  std::string sha;
  std::string subject;
  std::string verdict;         // "" (not known yet), "good", "bad", or "skip" (it could not tell)
  std::string how;             // "built: #12 succeeded", "its derivation is the good one's", …
  std::optional<int64_t> job;  // the bisect build of it, if one was queued
  std::string drv;             // its derivation, once evaluated
};

struct BisectNext {
  enum class Kind { test, found, ambiguous };
  Kind kind = Kind::test;
  size_t index = 0;             // test: the commit to try; found: the first bad one
  std::vector<size_t> between;  // ambiguous: the commits it could not tell apart (skipped)
};

// `commits`: the commits after the good one, oldest first, the last one the bad one. The next
// commit is the middle of what is still open (between the newest good and the oldest bad); a
// skipped one is passed over for its nearest open neighbour.
BisectNext next_step(const std::vector<BisectCommit>& commits);

// The most builds a bisection of n commits needs: floor(log2(n)) + 1.
int max_builds(size_t n);

nlohmann::json to_json(const BisectCommit& c);
BisectCommit bisect_commit_from_json(const nlohmann::json& j);

}  // namespace ptbuild
