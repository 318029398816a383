// Reading and replacing files whole: recipes, templates, the config.
#pragma once

#include <optional>
#include <string>

namespace ptbuild {

// The file's bytes, or nullopt if it cannot be read.
std::optional<std::string> read_file(const std::string& path);

// Writes next to `path` and renames over it, so that a reader (a build, git) never sees half a
// file. An existing file keeps its mode and, where we may, its owner; a new one gets 0644.
// Returns an error message naming the file, or "".
std::string write_file_atomically(const std::string& path, const std::string& text);

}  // namespace ptbuild
