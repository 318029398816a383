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

}  // namespace ptbuild
