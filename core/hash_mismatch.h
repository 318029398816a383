// Reading "hash mismatch" errors out of a build log (docs/hash-repair.md), in every form Nix has printed:
//   Nix 2.3:  hash mismatch in fixed-output derivation '/nix/store/…-source':
//               wanted: sha256:0000…   got:    sha256:1k2…          (nix32)
//   Nix 2.4+: error: hash mismatch in fixed-output derivation '/nix/store/…-source.drv':
//                      specified: sha256-AAAA…=   got:    sha256-…    (SRI)
//   Lix:      the same, plus "likely URL:", "expected path:" and "got path:" lines
//   fetchers: hash mismatch in file downloaded from 'https://…': specified: … got: …
// with or without ANSI colour codes, several in one log (--keep-going).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptbuild {

struct HashMismatch {
  std::string drv;        // the derivation (Nix 2.4+, Lix) or its output path (Nix 2.3); may be ""
  std::string url;        // the download, when the log names it
  std::string specified;  // as printed: the hash the recipe gave
  std::string got;        // as printed: the hash of what was fetched
  std::string expected_path;
  std::string got_path;
  bool operator==(const HashMismatch&) const = default;
};

// Fed the log line by line; collects each complete mismatch once.
class HashMismatchCollector {
 public:
  void feed(std::string_view raw_line);
  const std::vector<HashMismatch>& mismatches() const { return done_; }

 private:
  std::optional<HashMismatch> current_;  // the block being read
  size_t current_index_ = 0;             // where it is in done_, once complete
  bool current_recorded_ = false;
  std::vector<HashMismatch> done_;
};

std::vector<HashMismatch> parse_hash_mismatches(std::string_view log);

}  // namespace ptbuild
