#include "local/recipes.h"

#include <algorithm>
#include <filesystem>

namespace ptbuild {

namespace fs = std::filesystem;

RecipeScan scan_recipes(const std::string& repo_path, const std::string& recipes_dir) {
  RecipeScan scan;
  const fs::path root = fs::path(repo_path) / recipes_dir;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    scan.error = "recipe folder " + root.string() + " does not exist";
    return scan;
  }
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    scan.error = "cannot read " + root.string() + ": " + ec.message();
    return scan;
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      scan.error = "cannot read " + root.string() + ": " + ec.message();
      break;
    }
    const fs::path& p = it->path();
    if (p.extension() != ".nix" || !it->is_regular_file(ec)) continue;
    fs::path rel = p.lexically_relative(root);
    std::string package;
    if (rel.filename() == "default.nix") {
      if (!rel.has_parent_path()) continue;  // pkgs/default.nix is not a package of its own
      for (const auto& part : rel.parent_path()) package += (package.empty() ? "" : ".") + part.string();
    } else if (!rel.has_parent_path()) {
      package = rel.stem().string();
    } else {
      continue;  // a helper imported by recipes
    }
    scan.recipes.push_back({package, (fs::path(recipes_dir) / rel).lexically_normal().string()});
  }
  std::sort(scan.recipes.begin(), scan.recipes.end(),
            [](const Recipe& a, const Recipe& b) { return a.package < b.package; });
  return scan;
}

}  // namespace ptbuild
