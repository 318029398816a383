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

}  // namespace ptbuild
