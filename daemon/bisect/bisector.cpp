#include "daemon/bisect/bisector.h"
#include "core/protocol.h"

#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/backend.h"
#include "core/clock.h"
#include "core/diagnosis.h"
#include "core/text.h"
#include "daemon/changes/changes.h"
#include "daemon/command.h"
#include "daemon/runner/off_loop.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/scheduler/steps.h"

namespace ptbuild {

namespace {

constexpr auto kGitTimeout = std::chrono::minutes(2);
constexpr auto kEvalTimeout = std::chrono::minutes(10);
// Below the queue's normal work (priority 0): a bisection uses what the fleet has left.
constexpr int kBisectPriority = -1;

std::string short_sha(const std::string& sha) {
  return sha.substr(0, 7);
}

// The commit `rev` names, or "" with `error` set.
std::string resolve(const std::string& repo, const std::string& rev, std::string& error) {
  CommandResult r = run_command({"git", "-C", repo, "rev-parse", "--verify", "--quiet", rev + "^{commit}"},
                                repo, kGitTimeout);
  if (!r.ok() || trim(r.out).empty()) {
    error = "'" + rev + "' is no commit of " + repo;
    return "";
  }
  return std::string(trim(r.out));
}

// A worktree of the repo at `sha` (made once, shared by the bisections that need it), and the
// variant's derivation there; "" with `error` set when it does not evaluate.
struct Evaluated {
  std::string drv;
  std::string error;
};
Evaluated evaluate_at(const std::string& nix, const std::string& repo, const std::string& recipe,
                      const std::string& state_dir, const std::string& sha) {
  namespace fs = std::filesystem;
  std::string dir = bisect_worktree(state_dir, sha);
  std::error_code ec;
  if (!fs::exists(dir + "/" + recipe, ec)) {
    fs::remove_all(dir, ec);
    fs::create_directories(fs::path(dir).parent_path(), ec);
    run_command({"git", "-C", repo, "worktree", "prune"}, repo, kGitTimeout);
    CommandResult add = run_command({"git", "-C", repo, "worktree", "add", "--detach", "--force", dir, sha},
                                    repo, kGitTimeout);
    if (!add.ok()) return {"", "git worktree add failed: " + std::string(trim(add.err)).substr(0, 300)};
    if (!fs::exists(dir + "/" + recipe, ec))
      return {"", "the recipe " + recipe + " is not in " + short_sha(sha)};
  }
  CommandResult drv = run_command({nix, "--extra-experimental-features", "nix-command", "eval", "--raw", "-f",
                                   dir + "/" + recipe, "drvPath"},
                                  dir, kEvalTimeout);
  std::string path(trim(drv.out));
  if (!drv.ok() || !path.starts_with("/nix/store/"))
    return {"", "it does not evaluate: " + std::string(trim(drv.err)).substr(0, 300)};
  return {path, ""};
}

struct Started {
  BisectRecord record;
  std::string error;
};

}  // namespace

void Bisector::start() {
  scheduler_.follow_jobs([this](const Job& job) { on_job(job); });
  for (const BisectRecord& b : store_.bisects(1000))
    if (b.state == "running") step(b.id);
}

std::optional<BisectRecord> Bisector::running(int64_t id) {
  for (BisectRecord& b : store_.bisects(1000))
    if (b.id == id && b.state == "running") return std::move(b);
  return std::nullopt;
}

void Bisector::bisect(const std::string& variant, const std::string& good, const std::string& bad,
                      std::function<void(std::optional<BisectRecord>, std::string)> done) {
  std::optional<VariantRecord> v = store_.variant(variant);
  if (!v) return done(std::nullopt, "no variant named '" + variant + "'");
  for (const BisectRecord& b : store_.bisects(1000))
    if (b.variant == variant && b.state == "running")
      return done(std::nullopt, variant + " is being bisected already (bisect #" + std::to_string(b.id) +
                                    "): ptbuild bisect cancel " + variant + " first");
  std::string good_rev = good, bad_rev = bad;
  if (good_rev.empty()) {
    std::optional<Job> last_good = store_.latest_good_build(variant);
    if (!last_good || !last_good->commit)
      return done(std::nullopt,
                  "no good build of " + variant + " with a known commit: name one with --good REV");
    good_rev = *last_good->commit;
  }
  if (bad_rev.empty()) {
    std::optional<Job> last = store_.latest_job(variant, JobKind::build);
    bad_rev = last && last->state == JobState::failed && last->commit ? *last->commit : "HEAD";
  }
  off_loop_.run(
      [repo = v->repo_path, recipe = v->recipe, variant, good_rev, bad_rev,
       nix = nix_program(config_.backend), state_dir = config_.daemon.state_dir, now = clock_.rfc3339()] {
        Started s;
        BisectRecord& b = s.record;
        b.variant = variant;
        b.state = "running";
        b.created_at = now;
        b.good = resolve(repo, good_rev, s.error);
        if (!s.error.empty()) return s;
        b.bad = resolve(repo, bad_rev, s.error);
        if (!s.error.empty()) return s;
        if (!run_command({"git", "-C", repo, "merge-base", "--is-ancestor", b.good, b.bad}, repo, kGitTimeout)
                 .ok()) {
          s.error = short_sha(b.good) + " (good) is not an ancestor of " + short_sha(b.bad) + " (bad)";
          return s;
        }
        CommandResult log = run_command({"git", "-C", repo, "log", "--reverse", "--ancestry-path",
                                         "--format=%H%x1f%s", b.good + ".." + b.bad},
                                        repo, kGitTimeout);
        if (!log.ok()) {
          s.error = "git log failed: " + std::string(trim(log.err));
          return s;
        }
        for (std::string_view line : split_lines(log.out)) {
          size_t sep = line.find('\x1f');
          if (sep == std::string_view::npos) continue;
          b.commits.push_back(
              {std::string(line.substr(0, sep)), std::string(line.substr(sep + 1)), "", "", {}, ""});
        }
        if (b.commits.empty()) {
          s.error = "no commit between " + short_sha(b.good) + " and " + short_sha(b.bad);
          return s;
        }
        Evaluated at_good = evaluate_at(nix, repo, recipe, state_dir, b.good);
        b.good_drv = at_good.drv;
        b.commits.back().verdict = "bad";
        b.commits.back().how = "the bad end";
        b.commits.back().drv = evaluate_at(nix, repo, recipe, state_dir, b.bad).drv;
        return s;
      },
      [this, done = std::move(done)](Started s) {
        if (!s.error.empty()) return done(std::nullopt, s.error);
        try {
          s.record.id = store_.insert_bisect(s.record);
        } catch (const std::exception& e) {
          return done(std::nullopt, std::string("the bisection could not be recorded: ") + e.what());
        }
        spdlog::info("bisect #{} {}: {} commits between {} (good) and {} (bad), at most {} builds",
                     s.record.id, s.record.variant, s.record.commits.size(), short_sha(s.record.good),
                     short_sha(s.record.bad), max_builds(s.record.commits.size()));
        done(s.record, "");
        step(s.record.id);
      });
}

void Bisector::step(int64_t id) {
  if (evaluating_.count(id)) return;
  std::optional<BisectRecord> found = running(id);
  if (!found) return;
  BisectRecord& b = *found;
  for (const BisectCommit& c : b.commits)
    if (c.job && c.verdict.empty()) {
      // Its build is queued or running, or ended while ptbuildd was stopped.
      std::optional<Job> job = store_.job(*c.job);
      if (job && is_finished(job->state)) on_job(*job);
      return;
    }
  BisectNext next = next_step(b.commits);
  if (next.kind == BisectNext::Kind::ambiguous) {
    std::string which;
    for (size_t i : next.between) which += (which.empty() ? "" : ", ") + short_sha(b.commits[i].sha);
    return finish(b, "ambiguous",
                  "the first bad commit is one of " + which + " (the others could not be built)");
  }
  if (next.kind == BisectNext::Kind::found) {
    size_t bad = next.index;
    const BisectCommit& first = b.commits[bad];
    std::string good_sha = bad == 0 ? b.good : b.commits[bad - 1].sha;
    std::string good_drv = bad == 0 ? b.good_drv : b.commits[bad - 1].drv;
    std::optional<VariantRecord> v = store_.variant(b.variant);
    ChangesQuery q;
    q.nix_program = nix_program(config_.backend);
    q.repo_path = bisect_worktree(config_.daemon.state_dir, first.sha);
    q.recipe = v ? v->recipe : "";
    q.build.id = first.job.value_or(0);
    q.build.variant = b.variant;
    q.build.commit = first.sha;
    if (!first.drv.empty()) q.build.drv_path = first.drv;
    Job since;
    since.variant = b.variant;
    since.commit = good_sha;
    if (!good_drv.empty()) since.drv_path = good_drv;
    q.since = since;
    evaluating_.insert(id);
    std::string message = "the first bad commit is " + short_sha(first.sha) + " \"" + first.subject + "\"";
    return off_loop_.run([q = std::move(q)] { return what_changed(q); },
                         [this, id, message](Changes changes) {
                           evaluating_.erase(id);
                           std::optional<BisectRecord> still = running(id);
                           if (!still) return;
                           still->first_bad = changes.commit;
                           still->changes_json = protocol::json_text(to_json(changes));
                           finish(*still, "found", message);
                         });
  }
  const BisectCommit& c = b.commits[next.index];
  std::optional<VariantRecord> v = store_.variant(b.variant);
  if (!v) return finish(b, "failed", b.variant + " is no longer in the matrix");
  evaluating_.insert(id);
  off_loop_.run(
      [nix = nix_program(config_.backend), repo = v->repo_path, recipe = v->recipe,
       state_dir = config_.daemon.state_dir,
       sha = c.sha] { return evaluate_at(nix, repo, recipe, state_dir, sha); },
      [this, id, index = next.index](Evaluated e) {
        evaluating_.erase(id);
        std::optional<BisectRecord> still = running(id);
        if (!still) return;
        BisectRecord& r = *still;
        BisectCommit& c = r.commits[index];
        c.drv = e.drv;
        if (!e.error.empty()) {
          c.verdict = "bad";
          c.how = e.error;
        } else if (e.drv == r.good_drv) {
          c.verdict = "good";
          c.how = "its derivation is the good end's: no build";
        } else {
          for (const BisectCommit& judged : r.commits)
            if (!judged.verdict.empty() && judged.verdict != "skip" && judged.drv == e.drv) {
              c.verdict = judged.verdict;
              c.how = "its derivation is " + short_sha(judged.sha) + "'s: no build";
              break;
            }
        }
        if (c.verdict.empty()) {
          try {
            auto tx = store_.begin();
            Job job = store_.insert_job(
                tx,
                {r.variant, JobKind::bisect, kBisectPriority,
                 "bisect #" + std::to_string(r.id) + ": " + short_sha(c.sha) + " " + c.subject, false, c.sha},
                clock_.rfc3339());
            tx.commit();
            c.job = job.id;
            c.how = "building: #" + std::to_string(job.id);
          } catch (const std::exception& e) {
            return finish(r, "failed", std::string("its build could not be queued: ") + e.what());
          }
        }
        store_.update_bisect(r);
        if (c.job) return scheduler_.poke();
        step(id);
      });
}

void Bisector::on_job(const Job& job) {
  if (job.kind != JobKind::bisect || !is_finished(job.state)) return;
  for (BisectRecord& b : store_.bisects(1000)) {
    if (b.state != "running") continue;
    for (BisectCommit& c : b.commits) {
      if (c.job != job.id || !c.verdict.empty()) continue;
      std::string cls = job.failure ? job.failure->failure_class : "";
      if (job.state == JobState::succeeded) {
        c.verdict = "good";
        c.how = "built: #" + std::to_string(job.id) + " succeeded";
      } else if (job.state == JobState::cancelled || is_transient(cls)) {
        c.verdict = "skip";
        c.how = "#" + std::to_string(job.id) + " " + std::string(to_string(job.state)) +
                (cls.empty() ? "" : " (" + cls + ")") + ": it tells nothing";
      } else {
        c.verdict = "bad";
        c.how = "built: #" + std::to_string(job.id) + " failed (" + cls + ")";
      }
      if (job.drv_path && c.drv.empty()) c.drv = *job.drv_path;
      store_.update_bisect(b);
      return step(b.id);
    }
  }
}

void Bisector::finish(BisectRecord& b, const std::string& state, const std::string& message) {
  b.state = state;
  b.message = message;
  b.finished_at = clock_.rfc3339();
  store_.update_bisect(b);
  spdlog::info("bisect #{} {}: {}: {}", b.id, b.variant, state, message);
  remove_worktrees(b);
}

std::vector<BisectRecord> Bisector::cancel(const std::string& variant, int uid) {
  std::vector<BisectRecord> out;
  for (BisectRecord& b : store_.bisects(1000)) {
    if (b.state != "running" || (!variant.empty() && b.variant != variant)) continue;
    for (const BisectCommit& c : b.commits)
      if (c.job && c.verdict.empty())
        scheduler_.cancel(*c.job, "uid " + std::to_string(uid) + " (bisect cancel)");
    finish(b, "cancelled", "cancelled by uid " + std::to_string(uid));
    out.push_back(b);
  }
  return out;
}

// The worktrees of a finished bisection go, but those a running one still needs.
void Bisector::remove_worktrees(const BisectRecord& b) {
  std::set<std::string> needed;
  for (const BisectRecord& other : store_.bisects(1000))
    if (other.state == "running" && other.id != b.id) {
      needed.insert(other.good);
      for (const BisectCommit& c : other.commits) needed.insert(c.sha);
    }
  std::vector<std::string> dirs;
  for (const std::string& sha : {b.good, b.bad})
    if (!needed.count(sha)) dirs.push_back(bisect_worktree(config_.daemon.state_dir, sha));
  for (const BisectCommit& c : b.commits)
    if (!needed.count(c.sha)) dirs.push_back(bisect_worktree(config_.daemon.state_dir, c.sha));
  std::optional<VariantRecord> v = store_.variant(b.variant);
  std::string repo = v ? v->repo_path : "";
  off_loop_.run(
      [repo, dirs] {
        for (const std::string& dir : dirs) {
          std::error_code ec;
          if (!std::filesystem::exists(dir, ec)) continue;
          if (!repo.empty())
            run_command({"git", "-C", repo, "worktree", "remove", "--force", dir}, repo, kGitTimeout);
          std::filesystem::remove_all(dir, ec);
        }
        if (!repo.empty()) run_command({"git", "-C", repo, "worktree", "prune"}, repo, kGitTimeout);
        return true;
      },
      [](bool) {});
}

}  // namespace ptbuild
