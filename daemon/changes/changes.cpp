#include "daemon/changes/changes.h"

#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "daemon/command.h"
#include "daemon/nightly/fingerprint.h"
#include "daemon/store/store.h"

namespace ptbuild {

namespace {
constexpr auto kShowTimeout = std::chrono::minutes(2);
constexpr auto kGitTimeout = std::chrono::seconds(60);
}  // namespace

ChangesQuery changes_query(Store& store, const std::string& nix_program, const Job& build,
                           std::optional<int64_t> since) {
  ChangesQuery q{nix_program, "", "", build, std::nullopt, {}};
  if (std::optional<VariantRecord> v = store.variant(build.variant)) {
    q.repo_path = v->repo_path;
    q.recipe = v->recipe;
  }
  if (since) {
    q.since = store.job(*since);
    if (!q.since || q.since->variant != build.variant || q.since->kind != JobKind::build)
      throw std::runtime_error("#" + std::to_string(*since) + " is no build of " + build.variant);
    if (*since >= build.id)
      throw std::runtime_error("#" + std::to_string(*since) + " is not older than #" +
                               std::to_string(build.id));
  } else {
    q.since = store.latest_good_build(build.variant, build.id);
  }
  if (!q.since) return q;
  for (const Store::HashFixRecord& fix : store.hash_fixes())
    if (fix.variant == build.variant && fix.job_id > q.since->id && fix.job_id <= build.id)
      q.actions.push_back("repaired the hash of " + store_path_name(fix.drv) + " in " + fix.file + ":" +
                          std::to_string(fix.line) + " (#" + std::to_string(fix.job_id) + ", " + fix.at +
                          ")");
  if (q.since->builder && build.builder && *q.since->builder != *build.builder)
    q.actions.push_back("built on " + *build.builder + ", #" + std::to_string(q.since->id) + " on " +
                        *q.since->builder);
  return q;
}

namespace {

std::vector<std::string_view> split_on(std::string_view text, char separator) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    size_t end = text.find(separator, start);
    out.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

// The closure of a derivation as `nix show-derivation -r` prints it, or why there is none.
nlohmann::json closure_of(const std::string& nix, const std::string& drv, int64_t job, std::string& note) {
  std::error_code ec;
  if (!std::filesystem::exists(drv, ec)) {
    note = "#" + std::to_string(job) + "'s derivation " + drv + " is no longer in the store";
    return nullptr;
  }
  CommandResult show = run_command(
      {nix, "--extra-experimental-features", "nix-command", "show-derivation", "-r", drv}, "/", kShowTimeout);
  nlohmann::json closure = nlohmann::json::parse(show.out, nullptr, false);
  if (!show.ok() || !closure.is_object()) {
    note = "nix show-derivation " + drv + " failed: " + std::string(trim(show.err)).substr(0, 300);
    return nullptr;
  }
  return closure;
}

void add_derivation(const ChangesQuery& q, Changes& c) {
  const Job& good = *q.since;
  if (!good.drv_path || !q.build.drv_path) {
    c.derivation_note = "#" + std::to_string(good.drv_path ? q.build.id : good.id) +
                        "'s derivation was not recorded (its recipe did not evaluate alone, or the source "
                        "listing of [hashfix] is off)";
    return;
  }
  if (*good.drv_path == *q.build.drv_path) {
    c.derivation = DerivationDiff{.same = true};
    return;
  }
  nlohmann::json before = closure_of(q.nix_program, *good.drv_path, good.id, c.derivation_note);
  if (before.is_null()) return;
  nlohmann::json after = closure_of(q.nix_program, *q.build.drv_path, q.build.id, c.derivation_note);
  if (after.is_null()) return;
  c.derivation = diff_derivations(before, *good.drv_path, after, *q.build.drv_path);
}

void add_commits(const ChangesQuery& q, Changes& c) {
  if (!c.since_commit || !c.commit) {
    c.commits_note = "the build repo's commit of #" + std::to_string(c.commit ? q.since->id : q.build.id) +
                     " is not known (no git checkout, or built before ptbuild recorded it)";
    return;
  }
  if (*c.since_commit == *c.commit) return;
  std::vector<std::string> argv{"git",         "-C",
                                q.repo_path,   "log",
                                "--reverse",   "--format=%x1e%H%x1f%s%x1f%an%x1f%aI",
                                "--name-only", *c.since_commit + ".." + *c.commit,
                                "--"};
  for (const auto& [file, text] : files_read(q.repo_path, q.recipe)) argv.push_back(file);
  CommandResult log = run_command(argv, q.repo_path, kGitTimeout);
  if (!log.ok()) {
    c.commits_note = "git log failed: " + std::string(trim(log.err)).substr(0, 300);
    return;
  }
  for (std::string_view record : split_on(log.out, '\x1e')) {
    if (trim(record).empty()) continue;
    std::vector<std::string_view> lines = split_lines(record);
    std::vector<std::string_view> head = split_on(lines.front(), '\x1f');
    if (head.size() < 4) continue;
    RepoCommit commit{
        std::string(head[0]), std::string(head[1]), std::string(head[2]), std::string(head[3]), {}};
    for (size_t i = 1; i < lines.size(); ++i)
      if (!trim(lines[i]).empty()) commit.files.emplace_back(trim(lines[i]));
    c.commits.push_back(std::move(commit));
  }
}

}  // namespace

Changes what_changed(const ChangesQuery& q) {
  Changes c;
  c.job = q.build.id;
  c.variant = q.build.variant;
  c.commit = q.build.commit;
  if (q.since) {
    c.since = q.since->id;
    c.since_commit = q.since->commit;
    c.actions = q.actions;
    add_derivation(q, c);
    add_commits(q, c);
  }
  c.summary = summarize(c);
  return c;
}

}  // namespace ptbuild
