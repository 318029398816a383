// Finding a hash in a recipe's text and choosing which occurrence to repair (docs/hash-repair.md). Pure:
// the files are read and written elsewhere.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/hash.h"

namespace ptbuild {

struct HashOccurrence {
  enum class Kind {
    real,      // the hash itself, in some spelling
    zero,      // a zero hash (sha256-AAAA…=, all-zero nix32 or hex)
    empty,     // hash = "";
    lib_fake,  // lib.fakeHash, lib.fakeSha256, lib.fakeSha512 (any prefix such as pkgs.)
  };
  Kind kind = Kind::real;
  size_t offset = 0;  // the bytes replaced by a repair
  size_t length = 0;
  int line = 0;  // 1-based
  HashSpelling spelling = HashSpelling::sri;
  std::string text;  // what stands there now
  bool is_fake() const { return kind != Kind::real; }
};

// Every place where `hash` is written, in any spelling, as a whole token.
std::vector<HashOccurrence> find_hash(std::string_view text, const Hash& hash);
// Every fake hash: one that can stand for any source until it is repaired.
std::vector<HashOccurrence> find_fake_hashes(std::string_view text);

// What replaces an occurrence: the new hash in the old one's spelling; fake and empty ones
// become SRI, and lib.fakeHash a quoted SRI string.
std::string replacement_for(const HashOccurrence& occurrence, const Hash& new_hash);

// Applies replacements (occurrences of one text, any order) and returns the new text.
std::string apply_replacements(std::string_view text,
                               const std::vector<std::pair<HashOccurrence, std::string>>& edits);

// What tells a derivation's source apart in a recipe: its url, rev, name. Strong clues (a url,
// a rev) name one source; weak ones (a url's path segment, a name) may be shared.
struct SourceClues {
  std::vector<std::string> strong;
  std::vector<std::string> weak;
};

// How close (in lines) the nearest line mentioning a clue is to the occurrence; -1 if none is
// within `window` lines. Strong clues are worth more: the result is distance for strong clues
// and 1000 + distance for weak ones.
int clue_distance(std::string_view text, const HashOccurrence& occurrence, const SourceClues& clues,
                  int window = 15);

}  // namespace ptbuild
