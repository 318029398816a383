// Reading the environment and the config file: the lookup order of docs/concepts.md.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/config.h"
#include "core/provenance.h"
#include "local/files.h"

namespace ptbuild {
namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool program_on_path(const std::string& program) {
  std::string path = env_or_empty("PATH");
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

}  // namespace

Environment current_environment() {
  Environment env;
  env.is_root = ::geteuid() == 0;
  env.xdg_state_home = env_or_empty("XDG_STATE_HOME");
  env.xdg_runtime_dir = env_or_empty("XDG_RUNTIME_DIR");
  env.home = env_or_empty("HOME");
  std::error_code ec;
  env.cwd = std::filesystem::current_path(ec).string();
  env.user_runtime_fallback = "/tmp/ptbuild-" + std::to_string(::geteuid());
  env.flox_on_path = program_on_path("flox");
  return env;
}

ConfigResult load_config(const std::optional<std::string>& explicit_path) {
  namespace fs = std::filesystem;
  Environment env = current_environment();
  std::string path;
  if (explicit_path) {
    path = *explicit_path;
  } else if (std::string p = env_or_empty("PTBUILD_CONFIG"); !p.empty()) {
    path = p;
  } else {
    for (const char* candidate : {"./ptbuild.toml", "/etc/ptbuild/ptbuildd.toml"})
      if (fs::exists(candidate)) {
        path = candidate;
        break;
      }
  }
  if (path.empty()) return parse_config("", "embedded defaults", env.cwd, env);
  std::optional<std::string> text = read_file(path);
  if (!text) return ConfigError{path + ": cannot read the config file"};
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  ConfigResult parsed = parse_config(*text, path, abs.parent_path().string(), env);
  Config* config = std::get_if<Config>(&parsed);
  if (!config) return parsed;
  if (!config->publish.signing_key.empty()) {  // with a key, nothing unsigned is published: it must work
    std::optional<std::string> key = read_file(config->publish.signing_key);
    std::string error;
    if (!key) return ConfigError{path + ": publish.signing_key: cannot read " + config->publish.signing_key};
    if (!parse_nix_key(*key, true, error))
      return ConfigError{path + ": publish.signing_key: " + config->publish.signing_key + ": " + error +
                         " (ptbuild keys generate NAME makes one)"};
  }
  if (config->daemon.builders_file.empty()) return parsed;
  std::optional<std::string> machines = read_file(config->daemon.builders_file);
  if (!machines)
    return ConfigError{path + ": daemon.builders_file: cannot read " + config->daemon.builders_file};
  if (std::optional<ConfigError> error = add_builders_file(*config, *machines)) return *error;
  return parsed;
}

}  // namespace ptbuild
