// The hash-mismatch parser and the hash spellings: any build log.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/hash.h"
#include "core/hash_locate.h"
#include "core/hash_mismatch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view log(reinterpret_cast<const char*>(data), size);
  for (const ptbuild::HashMismatch& m : ptbuild::parse_hash_mismatches(log)) {
    for (const std::string* h : {&m.specified, &m.got})
      if (auto parsed = ptbuild::parse_hash(*h)) {
        // A parsed hash prints and parses back to itself in every spelling.
        for (auto [spelling, text] : ptbuild::spellings_of(parsed->hash)) {
          auto back = ptbuild::parse_hash(text, parsed->hash.algo);
          if (!back || !(back->hash == parsed->hash)) __builtin_trap();
        }
        (void)ptbuild::find_hash(log, parsed->hash);
      }
  }
  (void)ptbuild::find_fake_hashes(log);
  return 0;
}
