// SHA-256, for fingerprints of recipe files: libsodium's (docs/provenance.md).
#pragma once

#include <string>
#include <string_view>

namespace ptbuild {

std::string sha256_hex(std::string_view data);

}  // namespace ptbuild
