#include "core/bisect.h"

#include <cmath>

#include <nlohmann/json.hpp>

namespace ptbuild {

BisectNext next_step(const std::vector<BisectCommit>& commits) {
  // lo: the newest good commit (-1: the good end); hi: the oldest bad one after it.
  long lo = -1;
  for (size_t i = 0; i < commits.size(); ++i)
    if (commits[i].verdict == "good") lo = static_cast<long>(i);
  long hi = static_cast<long>(commits.size()) - 1;
  for (long i = lo + 1; i < static_cast<long>(commits.size()); ++i)
    if (commits[static_cast<size_t>(i)].verdict == "bad") {
      hi = i;
      break;
    }
  BisectNext next;
  std::vector<size_t> open;
  for (long i = lo + 1; i < hi; ++i)
    if (commits[static_cast<size_t>(i)].verdict != "skip") open.push_back(static_cast<size_t>(i));
  if (open.empty()) {
    next.index = static_cast<size_t>(hi);
    if (hi == lo + 1) return next.kind = BisectNext::Kind::found, next;
    next.kind = BisectNext::Kind::ambiguous;
    for (long i = lo + 1; i <= hi; ++i) next.between.push_back(static_cast<size_t>(i));
    return next;
  }
  // The open commit nearest the middle of (lo, hi).
  double middle = (static_cast<double>(lo) + static_cast<double>(hi)) / 2;
  size_t best = open.front();
  for (size_t i : open)
    if (std::abs(static_cast<double>(i) - middle) < std::abs(static_cast<double>(best) - middle)) best = i;
  next.index = best;
  return next;
}

int max_builds(size_t n) {
  int bits = 0;
  while (n > 1) {
    n /= 2;
    ++bits;
  }
  return bits + 1;
}

nlohmann::json to_json(const BisectCommit& c) {
  return {{"commit", c.sha},
          {"subject", c.subject},
          {"verdict", c.verdict},
          {"how", c.how},
          {"job", c.job ? nlohmann::json(*c.job) : nlohmann::json(nullptr)},
          {"drv", c.drv}};
}

BisectCommit bisect_commit_from_json(const nlohmann::json& j) {
  BisectCommit c{j.at("commit").get<std::string>(),
                 j.at("subject").get<std::string>(),
                 j.at("verdict").get<std::string>(),
                 j.at("how").get<std::string>(),
                 std::nullopt,
                 j.value("drv", "")};
  if (j.contains("job") && !j.at("job").is_null()) c.job = j.at("job").get<int64_t>();
  return c;
}

}  // namespace ptbuild
