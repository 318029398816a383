#include "daemon/scheduler/steps.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/diagnosis.h"
#include "core/sha256.h"
#include "core/text.h"
#include "daemon/command.h"
#include "daemon/log_reader.h"
#include "daemon/store/store.h"
#include "local/files.h"

namespace ptbuild {

namespace fs = std::filesystem;

namespace {
constexpr const char* kProbe =
#include "probe.inc"
    ;

}  // namespace

std::string recipe_sha(const std::string& recipe_path) {
  std::optional<std::string> text = read_file(recipe_path);
  return text ? sha256_hex(*text) : "";
}

std::string install_probe(const std::string& state_dir) {
  std::string path = state_dir + "/probe.py";
  std::string temp =
      path + ".tmp." + std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  std::ofstream(temp, std::ios::binary | std::ios::trunc) << kProbe;
  std::error_code ec;
  fs::rename(temp, path, ec);
  return path;
}

BuildCommand probe_command(const Config& config, const VariantRecord& v, const std::string& out,
                           const std::string& probe_path, std::map<std::string, std::string>& env) {
  std::string python = "python3";
  for (const char* candidate : {"/bin/python3", "/bin/python"})
    if (fs::exists(out + candidate)) {
      python = out + candidate;
      break;
    }
  if (python == "python3") {
    // A Python package output: torch under lib/python3.X/site-packages.
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(out + "/lib", ec))
      if (e.path().filename().string().starts_with("python") && fs::exists(e.path() / "site-packages"))
        env["PYTHONPATH"] = (e.path() / "site-packages").string();
  }
  std::string templ = config.verify.command.empty() ? "{python} {probe}" : config.verify.command;
  BuildCommand cmd;
  std::istringstream words(templ);
  for (std::string word; words >> word;) {
    replace_all(word, "{out}", out);
    replace_all(word, "{variant}", v.name);
    replace_all(word, "{probe}", probe_path);
    replace_all(word, "{python}", python);
    cmd.argv.push_back(word);
  }
  cmd.cwd = out;
  return cmd;
}

std::string bisect_worktree(const std::string& state_dir, const std::string& rev) {
  return state_dir + "/bisect/" + rev;
}

std::optional<std::string> head_commit(const std::string& repo_path) {
  CommandResult head = run_command({"git", "-C", repo_path, "rev-parse", "--verify", "--quiet", "HEAD"},
                                   repo_path, std::chrono::seconds(30));
  if (!head.ok() || trim(head.out).empty()) return std::nullopt;
  return std::string(trim(head.out));
}

std::string flox_publish_refusal(const std::string& repo) {
  CommandResult dirty =
      run_command({"git", "-C", repo, "status", "--porcelain", "--untracked-files=no"}, repo);
  if (!dirty.ok()) return "the build repo is not a git checkout: " + std::string(trim(dirty.err));
  if (!trim(dirty.out).empty())
    return "the build repo has changes to tracked files and flox publishes only a clean tree: " +
           std::string(trim(dirty.out)) + " (commit or stash them)";
  CommandResult branch = run_command({"git", "-C", repo, "rev-parse", "--abbrev-ref", "HEAD"}, repo);
  CommandResult upstream =
      run_command({"git", "-C", repo, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}"}, repo);
  if (!upstream.ok())
    return "branch '" + std::string(trim(branch.out)) +
           "' has no upstream remote, and flox publishes what the remote has (git push -u <remote> " +
           std::string(trim(branch.out)) + ")";
  CommandResult pushed = run_command({"git", "-C", repo, "branch", "-r", "--contains", "HEAD"}, repo);
  if (trim(pushed.out).empty()) {
    CommandResult head = run_command({"git", "-C", repo, "rev-parse", "--short", "HEAD"}, repo);
    return "HEAD " + std::string(trim(head.out)) +
           " is not on the remote, and flox publishes what the remote has (git push)";
  }
  return "";
}

std::optional<Failure> settled_failure(const std::string& log_path, const VariantAxes& axes) {
  LogReader reader(log_path);
  LogCursor cursor;
  LogScanner scanner(axes);
  std::string partial;
  bool at_end = false;
  while (!at_end) {
    partial += reader.read(cursor, kLogChunk, at_end);
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(partial.data() + start, nl - start);
      if (line.starts_with("=== ptbuild: job #")) scanner = LogScanner(axes);  // a new attempt
      scanner.feed(line);
    }
    partial.erase(0, start);
  }
  std::optional<Failure> f = scanner.diagnose(1);
  namespace fc = failure_class;
  if (!f || (f->failure_class != fc::kCudaNotFound && f->failure_class != fc::kUnknownCudaArch &&
             f->failure_class != fc::kUnsupportedGpuArch && f->failure_class != fc::kEvalError))
    return std::nullopt;
  return f;
}

}  // namespace ptbuild
