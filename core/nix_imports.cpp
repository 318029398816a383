#include "core/nix_imports.h"

#include <cctype>

namespace ptbuild {

std::vector<std::string> relative_paths_in(std::string_view text) {
  std::vector<std::string> out;
  auto path_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' || c == '-' ||
           c == '+';
  };
  for (size_t i = 0; i < text.size(); ++i) {
    // A Nix path literal starts with ./ or ../ and is not part of a longer word.
    bool starts = text.compare(i, 2, "./") == 0 || text.compare(i, 3, "../") == 0;
    if (!starts || (i > 0 && (path_char(text[i - 1]) || text[i - 1] == '"'))) continue;
    if (i > 0 && text[i - 1] == '#') continue;
    size_t end = i;
    while (end < text.size() && path_char(text[end])) ++end;
    std::string path(text.substr(i, end - i));
    while (!path.empty() && (path.back() == '.' || path.back() == '/')) path.pop_back();
    if (path.size() > 2) out.push_back(path);
    i = end;
  }
  // Comments may hold paths too; reading a file that is not needed only costs a hash.
  return out;
}

}  // namespace ptbuild
