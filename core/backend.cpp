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
    cmd.argv = {backend.program, "--extra-experimental-features", "nix-command", "build", "-f",
                t.repo_path + "/" + t.recipe, "-o", cmd.result_link,
                // -L: the builder's own output (cmake, ninja, nvcc) is what diagnosis reads;
                // --keep-going: every wrong hash of a build shows up in one run.
                "-L", "--keep-going"};
  }
  cmd.argv.insert(cmd.argv.end(), backend.args.begin(), backend.args.end());
  return cmd;
}

BuildCommand publish_command(const Config::Backend& backend, const Config::Publish& publish,
                             const BuildTarget& t, const std::string& out_path,
                             const std::string& provenance_file) {
  BuildCommand cmd;
  cmd.cwd = t.repo_path;
  if (backend.kind == "flox") {
    cmd.argv = {backend.program, "publish", "-d", t.repo_path};
    if (!publish.org.empty()) cmd.argv.insert(cmd.argv.end(), {"-o", publish.org});
    cmd.argv.push_back(t.package);
  } else if (publish.signing_key.empty() &&
             (provenance_file.empty() || !publish.store.starts_with("file://"))) {
    cmd.argv = {
        backend.program, "--extra-experimental-features", "nix-command", "copy", "--to", publish.store,
        out_path};
  } else {
    // Signed before it is copied, so nothing unsigned reaches the cache; the provenance beside the
    // artifact where the cache is a folder (docs/provenance.md).
    static constexpr const char* kSignedCopy =
        "set -e\n"
        "nix=$1 key=$2 store=$3 out=$4 provenance=$5\n"
        "[ -z \"$key\" ] || \"$nix\" --extra-experimental-features nix-command store sign --key-file \"$key\" -r "
        "\"$out\"\n"
        "\"$nix\" --extra-experimental-features nix-command copy --to \"$store\" \"$out\"\n"
        "case $store in file://*)\n"
        "  if [ -n \"$provenance\" ] && [ -f \"$provenance\" ]; then\n"
        "    dir=${store#file://}; dir=${dir%%\\?*}\n"
        "    mkdir -p \"$dir/provenance\"\n"
        "    cp \"$provenance\" \"$dir/provenance/${out##*/}.intoto.json\"\n"
        "  fi;;\n"
        "esac\n";
    cmd.argv = {"/bin/sh",           "-c",          kSignedCopy, "ptbuild-publish", backend.program,
                publish.signing_key, publish.store, out_path,    provenance_file};
  }
  return cmd;
}

std::string nix_program(const Config::Backend& backend) {
  return backend.kind == "nix" ? backend.program : "nix";
}

BuildCommand builder_probe_command(const Config::Backend& backend, const std::string& nonce) {
  std::string expr =
      "derivation { name = \"ptbuild-builder-probe\"; system = \"builtin\"; "
      "builder = \"builtin:buildenv\"; manifest = \"/dev/null\"; derivations = \"\"; "
      "preferLocalBuild = true; allowSubstitutes = false; "
      "nonce = \"" +
      nonce + "\"; }";
  return {{nix_program(backend), "--extra-experimental-features", "nix-command", "build", "--no-link",
           "--expr", expr},
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

void give_cores(const Config::Backend& backend, int cores, BuildCommand& command,
                std::map<std::string, std::string>& env, const std::string& inherited_nix_config) {
  if (backend.kind == "nix") {
    command.argv.insert(command.argv.end(), {"--cores", std::to_string(cores)});
    return;
  }
  auto set = env.find("NIX_CONFIG");
  std::string config = set != env.end() ? set->second : inherited_nix_config;
  if (!config.empty() && config.back() != '\n') config += '\n';
  env["NIX_CONFIG"] = config + "cores = " + std::to_string(cores) + "\n";
}

BuildCommand derivation_needs_command(const Config::Backend& backend, const std::string& recipe_path,
                                      std::map<std::string, std::string>& env) {
  env["PTBUILD_RECIPE"] = recipe_path;
  // As `nix build -f` calls it: a function gets its defaults. drvAttrs are what the .drv records.
  std::string expr =
      "let f = import (/. + builtins.getEnv \"PTBUILD_RECIPE\"); "
      "d = if builtins.isFunction f then f { } else f; a = d.drvAttrs or d; "
      "in { system = a.system or \"\"; features = a.requiredSystemFeatures or [ ]; }";
  return {{nix_program(backend), "--extra-experimental-features", "nix-command", "eval", "--json", "--impure",
           "--expr", expr},
          "",
          ""};
}

BuildCommand builder_ping_command(const Config::Backend& backend, const BuilderSpec& builder) {
  return {{nix_program(backend), "--extra-experimental-features", "nix-command", "store", "ping", "--store",
           builder.store_uri()},
          "",
          ""};
}

namespace {
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
}  // namespace

namespace {
// ssh to a builder as Nix reaches it: $1 destination (user@host), $2 port, $3 key, $4 host key
// (base64), $5 the remote command; stdin passes through. The host key is checked as Nix checks
// it: against the configured one.
constexpr const char* kSshScript =
    "dest=$1 port=$2 key=$3 host_key=$4 command=$5\n"
    "shift 5\n"
    "set -- -o BatchMode=yes\n"
    "[ -z \"$port\" ] || set -- \"$@\" -p \"$port\"\n"
    "[ -z \"$key\" ] || set -- \"$@\" -i \"$key\"\n"
    "if [ -n \"$host_key\" ]; then\n"
    "  known=$(mktemp); trap 'rm -f \"$known\"' EXIT\n"
    "  printf '%s %s\\n' \"${dest#*@}\" \"$(printf %s \"$host_key\" | base64 -d)\" > \"$known\"\n"
    "  set -- \"$@\" -o UserKnownHostsFile=\"$known\" -o StrictHostKeyChecking=yes\n"
    "fi\n"
    "ssh \"$@\" \"$dest\" \"$command\"\n";

// The arguments of kSshScript for `builder`: ssh://user@host:port -> "user@host", "port", …
std::vector<std::string> ssh_arguments(const BuilderSpec& builder, const std::string& remote_command) {
  std::string dest = builder.uri.substr(builder.uri.find("://") + 3);
  std::string port;
  if (size_t colon = dest.rfind(':'); colon != std::string::npos && dest.find(']') == std::string::npos) {
    port = dest.substr(colon + 1);
    dest.resize(colon);
  }
  return {dest, port, builder.ssh_key, builder.public_host_key, remote_command};
}
}  // namespace

BuildCommand remote_probe_command(const Config::Backend& backend, const BuilderSpec& builder,
                                  const std::string& out_path, const std::vector<std::string>& probe_argv,
                                  const std::map<std::string, std::string>& env,
                                  const std::string& probe_path) {
  std::string remote = "env";
  for (const auto& [k, v] : env) remote += " " + shell_quote(k + "=" + v);
  for (const std::string& word : probe_argv) remote += " " + shell_quote(word);
  // $1 nix, $2 store, $3 out, $4 probe, $5 the ssh script, then its arguments.
  static constexpr const char* kScript =
      "set -e\n"
      "\"$1\" --extra-experimental-features nix-command copy --no-check-sigs --to \"$2\" \"$3\"\n"
      "probe=$4 ssh_script=$5\n"
      "shift 5\n"
      "exec /bin/sh -c \"$ssh_script\" ptbuild-ssh \"$@\" < \"$probe\"\n";
  BuildCommand cmd{{"/bin/sh", "-c", kScript, "ptbuild-verify", nix_program(backend), builder.store_uri(),
                    out_path, probe_path, kSshScript},
                   "",
                   ""};
  for (std::string& arg : ssh_arguments(builder, remote)) cmd.argv.push_back(std::move(arg));
  return cmd;
}

BuildCommand machine_facts_command(const BuilderSpec& builder) {
  BuildCommand cmd{{"/bin/sh", "-c", kSshScript, "ptbuild-facts"}, "", ""};
  for (std::string& arg : ssh_arguments(builder, "sh -c " + shell_quote(remote_facts_script())))
    cmd.argv.push_back(std::move(arg));
  return cmd;
}

BuildCommand remote_gc_command(const BuilderSpec& builder, uint64_t max_free) {
  BuildCommand cmd{{"/bin/sh", "-c", kSshScript, "ptbuild-gc"}, "", ""};
  for (std::string& arg : ssh_arguments(builder, "nix-store --gc --max-freed " + std::to_string(max_free)))
    cmd.argv.push_back(std::move(arg));
  return cmd;
}

BuildCommand realise_command(const Config::Backend& backend, const std::vector<std::string>& drvs) {
  BuildCommand cmd{{nix_program(backend), "--extra-experimental-features", "nix-command", "build",
                    "--no-link", "--keep-going", "-L"},
                   "",
                   ""};
  cmd.argv.insert(cmd.argv.end(), drvs.begin(), drvs.end());
  return cmd;
}

}  // namespace ptbuild
