#include "daemon/nightly/fingerprint.h"

#include <filesystem>
#include <map>
#include <sstream>

#include "core/nix_imports.h"
#include "core/sha256.h"
#include "local/files.h"

namespace ptbuild {

namespace fs = std::filesystem;

std::map<std::string, std::string> files_read(const std::string& repo_path, const std::string& recipe) {
  std::error_code ec;
  fs::path root = fs::weakly_canonical(repo_path, ec);
  std::map<std::string, std::string> contents;
  std::vector<fs::path> todo{root / recipe};
  while (!todo.empty()) {
    fs::path p = fs::weakly_canonical(todo.back(), ec);
    todo.pop_back();
    if (fs::is_directory(p, ec)) p /= "default.nix";
    std::string rel = p.lexically_relative(root).string();
    if (rel.empty() || rel.starts_with("..") || contents.count(rel)) continue;
    std::optional<std::string> text = read_file(p.string());
    if (!text) continue;
    contents[rel] = std::move(*text);
    if (p.extension() == ".nix")
      for (const std::string& ref : relative_paths_in(contents[rel])) todo.push_back(p.parent_path() / ref);
  }
  return contents;
}

std::string file_fingerprint(const std::string& repo_path, const std::string& recipe) {
  // Sorted by path, for a stable hash.
  std::map<std::string, std::string> contents = files_read(repo_path, recipe);
  std::string all;
  for (const auto& [rel, text] : contents) all += rel + '\0' + std::to_string(text.size()) + '\0' + text;
  return "files:" + sha256_hex(all);
}

}  // namespace ptbuild
