#include "core/backend.h"

namespace ptbuild {

BuildCommand build_command(const Config::Backend& backend, const BuildTarget& t) {
  BuildCommand cmd;
  cmd.cwd = t.repo_path;
  if (backend.kind == "flox") {
    cmd.argv = {backend.program, "build", "-d", t.repo_path, t.package};
    cmd.result_link = t.repo_path + "/result-" + t.package;
  } else {
    cmd.result_link = t.results_dir + "/" + t.package;
    cmd.argv = {backend.program, "--extra-experimental-features", "nix-command", "build",
                "-f",            t.repo_path + "/" + t.recipe,  "-o",          cmd.result_link,
                // -L: the builder's own output (cmake, ninja, nvcc) is what diagnosis reads;
                // --keep-going: every wrong hash of a build shows up in one run.
                "-L",            "--keep-going"};
  }
  cmd.argv.insert(cmd.argv.end(), backend.args.begin(), backend.args.end());
  return cmd;
}

BuildCommand publish_command(const Config::Backend& backend, const Config::Publish& publish,
                             const BuildTarget& t, const std::string& out_path) {
  BuildCommand cmd;
  cmd.cwd = t.repo_path;
  if (backend.kind == "flox") {
    cmd.argv = {backend.program, "publish", "-d", t.repo_path};
    if (!publish.org.empty()) cmd.argv.insert(cmd.argv.end(), {"-o", publish.org});
    cmd.argv.push_back(t.package);
  } else {
    cmd.argv = {backend.program, "--extra-experimental-features", "nix-command", "copy", "--to", publish.store, out_path};
  }
  return cmd;
}

std::string nix_program(const Config::Backend& backend) {
  return backend.kind == "nix" ? backend.program : "nix";
}

BuildCommand builder_probe_command(const Config::Backend& backend, const std::string& nonce) {
  std::string expr = "derivation { name = \"ptbuild-builder-probe\"; system = \"builtin\"; "
                     "builder = \"builtin:buildenv\"; manifest = \"/dev/null\"; derivations = \"\"; "
                     "preferLocalBuild = true; allowSubstitutes = false; "
                     "nonce = \"" + nonce + "\"; }";
  return {{nix_program(backend), "--extra-experimental-features", "nix-command", "build", "--no-link", "--expr", expr},
          "",
          ""};
}

void place_on_builder(const Config::Backend& backend, const BuilderSpec& builder, BuildCommand& command,
                      std::map<std::string, std::string>& env, const std::string& inherited_nix_config) {
  std::string line = builder.is_local() ? "" : builder.machines_line();
  std::string max_jobs = builder.is_local() ? "" : "0";
  if (backend.kind == "nix") {
    command.argv.insert(command.argv.end(), {"--builders", line});
    if (!max_jobs.empty()) command.argv.insert(command.argv.end(), {"--max-jobs", max_jobs});
    return;
  }
  std::string config = inherited_nix_config;
  if (!config.empty() && config.back() != '\n') config += '\n';
  config += "builders = " + line + "\n";
  if (!max_jobs.empty()) config += "max-jobs = " + max_jobs + "\n";
  env["NIX_CONFIG"] = config;
}

BuildCommand derivation_needs_command(const Config::Backend& backend, const std::string& recipe_path,
                                      std::map<std::string, std::string>& env) {
  env["PTBUILD_RECIPE"] = recipe_path;
  // As `nix build -f` calls it: a function gets its defaults. drvAttrs are what the .drv records.
  std::string expr =
      "let f = import (/. + builtins.getEnv \"PTBUILD_RECIPE\"); "
      "d = if builtins.isFunction f then f { } else f; a = d.drvAttrs or d; "
      "in { system = a.system or \"\"; features = a.requiredSystemFeatures or [ ]; }";
  return {{nix_program(backend), "--extra-experimental-features", "nix-command", "eval", "--json", "--impure", "--expr",
           expr},
          "",
          ""};
}

BuildCommand builder_ping_command(const Config::Backend& backend, const BuilderSpec& builder) {
  return {{nix_program(backend), "--extra-experimental-features", "nix-command", "store", "ping", "--store",
           builder.store_uri()},
          "",
          ""};
}

}  // namespace ptbuild
