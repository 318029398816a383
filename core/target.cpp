#include "core/target.h"

#include <algorithm>

#include "core/text.h"

namespace ptbuild {
namespace {

bool is_glob(std::string_view t) {
  return t.find_first_of("*?[") != t.npos;
}

// Every alias of a name: each suffix that starts right after a dash.
template <class F>
bool any_alias(std::string_view name, F&& pred) {
  for (size_t i = 0; i < name.size(); ++i)
    if (name[i] == '-' && pred(name.substr(i + 1))) return true;
  return false;
}

bool match_class(std::string_view pattern, size_t& pi, char c) {
  // pattern[pi] == '[' on entry; on return pi is just past ']'.
  size_t i = pi + 1;
  bool negate = i < pattern.size() && (pattern[i] == '!' || pattern[i] == '^');
  if (negate) ++i;
  bool matched = false;
  bool first = true;
  while (i < pattern.size() && (first || pattern[i] != ']')) {
    first = false;
    char lo = pattern[i];
    if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      if (c >= lo && c <= pattern[i + 2]) matched = true;
      i += 3;
    } else {
      if (c == lo) matched = true;
      ++i;
    }
  }
  pi = i + 1;
  return matched != negate;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative matcher with single-star backtracking: linear in practice, no recursion.
  size_t p = 0, t = 0, star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = p++;
      star_t = t;
      continue;
    }
    if (p < pattern.size() && pattern[p] == '[' && pattern.find(']', p + 2) != pattern.npos) {
      size_t next = p;
      if (match_class(pattern, next, text[t])) {
        p = next;
        ++t;
        continue;
      }
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
      continue;
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Resolution resolve_targets(const std::vector<std::string>& targets, const std::vector<CatalogEntry>& catalog,
                           const AliasDefaults& defaults) {
  Resolution res;
  std::vector<bool> chosen(catalog.size(), false);

  auto default_cuda_of = [&](const std::string& repo) -> std::string {
    for (const auto& [r, cuda] : defaults.default_cuda_by_repo)
      if (r == repo) return cuda;
    return "";
  };

  for (const std::string& target : targets) {
    std::vector<size_t> hits;
    if (target == "all") {
      for (size_t i = 0; i < catalog.size(); ++i) hits.push_back(i);
    } else if (is_glob(target)) {
      for (size_t i = 0; i < catalog.size(); ++i) {
        const std::string& n = catalog[i].name;
        if (glob_match(target, n) || any_alias(n, [&](std::string_view a) { return glob_match(target, a); }))
          hits.push_back(i);
      }
    } else {
      for (size_t i = 0; i < catalog.size(); ++i)
        if (catalog[i].name == target) hits.push_back(i);
      if (hits.empty()) {
        for (size_t i = 0; i < catalog.size(); ++i)
          if (any_alias(catalog[i].name, [&](std::string_view a) { return a == target; })) hits.push_back(i);
      }
      if (hits.size() > 1) {
        // Let the configured defaults decide, each only if it keeps at least one candidate.
        auto narrow = [&](auto keep) {
          std::vector<size_t> kept;
          std::copy_if(hits.begin(), hits.end(), std::back_inserter(kept), keep);
          if (!kept.empty()) hits = std::move(kept);
        };
        std::vector<size_t> all_hits = hits;
        narrow([&](size_t i) {
          std::string want = default_cuda_of(catalog[i].repo);
          return !want.empty() && catalog[i].axes.cuda == want;
        });
        if (!defaults.default_family.empty())
          narrow([&](size_t i) { return catalog[i].axes.family == defaults.default_family; });
        if (hits.size() > 1) {
          TargetError err{"ambiguous_target", "", {}};
          for (size_t i : all_hits) err.candidates.push_back(catalog[i].name);
          err.message = "'" + target + "' matches " + std::to_string(all_hits.size()) +
                        " variants: " + join(err.candidates, ", ") +
                        " (name one in full, or set default_cuda / default_family)";
          res.errors.push_back(std::move(err));
          continue;
        }
      }
    }
    if (hits.empty()) {
      res.errors.push_back({"unknown_target", "no variant matches '" + target + "'", {}});
      continue;
    }
    for (size_t i : hits) chosen[i] = true;
  }
  for (size_t i = 0; i < catalog.size(); ++i)
    if (chosen[i]) res.names.push_back(catalog[i].name);
  return res;
}

}  // namespace ptbuild
