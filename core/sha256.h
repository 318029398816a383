// SHA-256, for fingerprints of recipe files (no crypto library is a dependency).
#pragma once

#include <string>
#include <string_view>

namespace ptbuild {

std::string sha256_hex(std::string_view data);

}  // namespace ptbuild
