// Turning what a user types into variants (docs/concepts.md "target").
//
// A target is a full name, an alias (a trailing part of a name cut at a dash: "sm90-avx512",
// "cuda13_0-sm90-avx512", "cpu-avx2"), a shell glob over full names or aliases ("sm120-*",
// "*-avx512"), or "all". An alias that matches several variants is ambiguous unless the
// configured default CUDA version / family narrows it to one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/variant.h"

namespace ptbuild {

struct CatalogEntry {
  std::string name;
  std::string repo;
  VariantAxes axes;
};

struct AliasDefaults {
  // Per repo: the CUDA version ("13_0") that an ambiguous alias means in that repo.
  std::vector<std::pair<std::string, std::string>> default_cuda_by_repo;
  std::string default_family;  // "" = none
};

struct TargetError {
  std::string code;  // "unknown_target" or "ambiguous_target"
  std::string message;
  std::vector<std::string> candidates;
};

struct Resolution {
  std::vector<std::string> names;  // in catalog order, each once
  std::vector<TargetError> errors;
  bool ok() const { return errors.empty(); }
};

// fnmatch-style glob: '*', '?', '[...]' (with '!' negation), no special meaning for '/'.
bool glob_match(std::string_view pattern, std::string_view text);

Resolution resolve_targets(const std::vector<std::string>& targets, const std::vector<CatalogEntry>& catalog,
                           const AliasDefaults& defaults);

}  // namespace ptbuild
