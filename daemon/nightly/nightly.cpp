#include "daemon/nightly/nightly.h"

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

#include "core/diagnosis.h"
#include "core/duration.h"
#include "core/text.h"
#include "daemon/nightly/fingerprint.h"
#include "daemon/runner/async_command.h"
#include "daemon/runner/off_loop.h"
#include "daemon/store/store.h"

namespace ptbuild {

namespace {

// The lines of nix-instantiate's output that are derivation paths, in order.
std::vector<std::string> drvs_in(const std::string& output) {
  std::vector<std::string> found;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    std::string_view l = trim(line);
    if (l.starts_with("/nix/store/") && l.ends_with(".drv")) found.emplace_back(l);
  }
  return found;
}

// The last of them.
std::string drv_in(const std::string& output) {
  std::vector<std::string> all = drvs_in(output);
  return all.empty() ? "" : all.back();
}

class NightlyRun : public std::enable_shared_from_this<NightlyRun> {
 public:
  NightlyRun(NightlyDeps deps, std::vector<std::string> targets, std::function<void(NightlyPlan)> done)
      : d_(std::move(deps)), targets_(std::move(targets)), done_(std::move(done)) {}

  void start() {
    deadline_ = std::chrono::steady_clock::now() + kNightlyDeadline;
    if (d_.config.nightly.pull) {
      pull(0);
    } else {
      decide();
    }
  }

 private:
  // git pull --ff-only in each repo, one after the other; a failing pull skips that repo.
  void pull(size_t i) {
    if (i == d_.config.repos.size()) return d_.rescan([self = shared_from_this()] { self->decide(); });
    const RepoConfig& repo = d_.config.repos[i];
    BuildCommand cmd{{"git", "-C", repo.path, "pull", "--ff-only", "--quiet"}, repo.path, ""};
    run_async(
        d_.io, d_.runner, cmd, kPullTimeout, [self = shared_from_this(), i, name = repo.name](AsyncResult r) {
          if (r.exit_code != 0) {
            self->failed_repos_.insert(name);
            self->plan_.errors.push_back({name, "git pull --ff-only failed: " + std::string(trim(r.output))});
          }
          self->pull(i + 1);
        });
  }

  // The recipe files of every variant asked for are read off the loop first (a repo on a hung
  // network mount must not stop the daemon); then each variant is decided.
  void decide() {
    Resolution res = d_.resolve(targets_);
    if (!res.ok()) {
      plan_.fatal = res.errors.front().message;
      return finish();
    }
    std::map<std::string, VariantRecord> variants;
    for (VariantRecord& v : d_.store.variants()) variants.emplace(v.name, std::move(v));
    std::vector<std::pair<std::string, VariantRecord>> wanted;
    for (const std::string& name : res.names) wanted.emplace_back(name, variants.at(name));
    d_.off_loop.run(
        [wanted] {
          std::map<std::string, std::string> prints;
          for (const auto& [name, v] : wanted) prints[name] = file_fingerprint(v.repo_path, v.recipe);
          return prints;
        },
        [self = shared_from_this(), names = res.names,
         variants = std::move(variants)](std::map<std::string, std::string> prints) {
          self->fingerprints_ = std::move(prints);
          self->decide_each(names, variants);
        });
  }

  void decide_each(const std::vector<std::string>& names,
                   const std::map<std::string, VariantRecord>& variants) {
    for (const std::string& name : names) {
      const VariantRecord& v = variants.at(name);
      if (failed_repos_.count(v.repo)) {
        plan_.skipped.push_back({name, "not checked: git pull failed in repo '" + v.repo + "'"});
        continue;
      }
      std::optional<Job> latest = d_.store.latest_job(name, JobKind::build);
      std::optional<Job> good = d_.store.latest_good_build(name);
      if (latest && (!good || latest->id != good->id) && is_finished(latest->state)) {
        std::string last =
            "its last build #" + std::to_string(latest->id) + " " + std::string(to_string(latest->state));
        if (latest->failure) last += " (" + latest->failure->failure_class + ")";
        // A 2-hour build that will fail again is not started: the recipe's own failure stays
        // until its inputs change; a transient one (network, timeout, …) is tried again.
        if (latest->state == JobState::failed && latest->failure &&
            !is_transient(latest->failure->failure_class)) {
          if (latest->fingerprint && *latest->fingerprint == fingerprints_[name]) {
            plan_.skipped.push_back({name, "known failure, inputs unchanged: " + last + ": " +
                                               latest->failure->message + " (ptbuild retry " + name +
                                               " builds it anyway)"});
            continue;
          }
          plan_.rebuild.push_back({name, last + ", and its recipe files changed since"});
          continue;
        }
        plan_.rebuild.push_back({name, last});
        continue;
      }
      if (!good) {
        plan_.rebuild.push_back({name, latest ? "its last build #" + std::to_string(latest->id) + " " +
                                                    std::string(to_string(latest->state))
                                              : "never built"});
        continue;
      }
      Candidate c{name, v, *good};
      // The derivation is the precise answer where Nix can evaluate the recipe and knows what
      // produced the last build's output; otherwise the files decide.
      if (d_.config.backend.kind == "nix" && (good->drv_path || good->out_path))
        to_evaluate_.push_back(std::move(c));
      else
        compare_files(c, "");
    }
    // One evaluator per repo (docs/nightly.md): recipes that import the same pinned nixpkgs share one
    // evaluation of it. Where that evaluation fails, each recipe of the repo is evaluated alone,
    // so one broken recipe costs only itself.
    std::map<std::string, std::vector<size_t>> by_repo;
    for (size_t i = 0; i < to_evaluate_.size(); ++i) by_repo[to_evaluate_[i].variant.repo].push_back(i);
    for (auto& [repo, group] : by_repo) {
      if (group.size() == 1) {
        singles_.push_back(group.front());
        continue;
      }
      evaluate_together(std::move(group));
    }
    next_evaluations();
  }

  void evaluate_together(std::vector<size_t> group) {
    const VariantRecord& first = to_evaluate_[group.front()].variant;
    BuildCommand cmd{{"nix-instantiate", "--quiet"}, first.repo_path, ""};
    for (size_t i : group)
      cmd.argv.push_back(to_evaluate_[i].variant.repo_path + "/" + to_evaluate_[i].variant.recipe);
    ++running_;
    run_async(
        d_.io, d_.runner, cmd, left(), [self = shared_from_this(), group = std::move(group)](AsyncResult r) {
          --self->running_;
          std::vector<std::string> drvs = r.exit_code == 0 ? drvs_in(r.output) : std::vector<std::string>{};
          if (drvs.size() != group.size()) {
            // One of them does not evaluate (or one is not a single derivation): each alone.
            self->singles_.insert(self->singles_.end(), group.begin(), group.end());
          } else {
            self->running_ +=
                static_cast<int>(group.size());  // all before any ends: none may finish the run early
            for (size_t k = 0; k < group.size(); ++k)
              self->after_evaluation(group[k], AsyncResult{0, drvs[k] + "\n", false});
          }
          self->next_evaluations();
        });
  }

  std::chrono::milliseconds left() const {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
    return std::max(std::chrono::milliseconds(1), std::min<std::chrono::milliseconds>(kEvalTimeout, left));
  }

  struct Candidate {
    std::string name;
    VariantRecord variant;
    Job good;
  };

  void next_evaluations() {
    while (running_ < kEvalParallel && !singles_.empty()) {
      size_t i = singles_.front();
      singles_.pop_front();
      const Candidate& c = to_evaluate_[i];
      std::string not_run;
      if (std::chrono::steady_clock::now() >= deadline_)
        not_run = "not evaluated: the nightly's " + format_duration(kNightlyDeadline) + " limit passed";
      else if (network_streak_[c.variant.repo] >= kNetworkStreak)
        not_run = "not evaluated: " + std::to_string(kNetworkStreak) + " evaluations in a row in repo '" +
                  c.variant.repo + "' could not download (is the network down?)";
      if (!not_run.empty()) {
        plan_.errors.push_back({c.name, not_run + "; compared its files instead"});
        compare_files(c, " (files compared: not evaluated)");
        ++done_count_;
        continue;
      }
      ++running_;
      BuildCommand cmd{{"nix-instantiate", "--quiet", c.variant.repo_path + "/" + c.variant.recipe},
                       c.variant.repo_path,
                       ""};
      run_async(d_.io, d_.runner, cmd, left(),
                [self = shared_from_this(), i](AsyncResult r) { self->after_evaluation(i, r); });
    }
    report_progress(false);
    if (running_ == 0 && singles_.empty()) finish();
  }

  // Counts as running until evaluated() is called.
  void after_evaluation(size_t i, AsyncResult r) {
    const Job& good = to_evaluate_[i].good;
    if (good.drv_path || r.exit_code != 0) return evaluated(i, r);
    // The derivation of the last good build: asked of the store once, then kept with the job.
    BuildCommand q{{"nix-store", "--query", "--deriver", *good.out_path}, "/", ""};
    run_async(d_.io, d_.runner, q, kEvalTimeout, [self = shared_from_this(), i, r](AsyncResult d) {
      Candidate& cand = self->to_evaluate_[i];
      std::string drv = d.exit_code == 0 ? drv_in(d.output) : "";
      if (!drv.empty()) {
        cand.good.drv_path = drv;
        self->d_.store.set_drv_path(cand.good.id, drv);
      }
      self->evaluated(i, r);
    });
  }

  void evaluated(size_t i, const AsyncResult& r) {
    --running_;
    ++done_count_;
    record(to_evaluate_[i], r);
    next_evaluations();
  }

  void report_progress(bool last) {
    auto now = std::chrono::steady_clock::now();
    if (!d_.progress || to_evaluate_.empty() || (!last && now - last_progress_ < std::chrono::seconds(1)))
      return;
    last_progress_ = now;
    d_.progress(done_count_, to_evaluate_.size());
  }

  void record(const Candidate& c, const AsyncResult& r) {
    std::string drv = r.exit_code == 0 ? drv_in(r.output) : "";
    int& streak = network_streak_[c.variant.repo];
    if (drv.empty()) {
      Failure f = diagnose_text(r.output, r.exit_code);
      if (r.timed_out) {
        f = {failure_class::kTimeout, "the evaluation did not end within its limit", "", ""};
      } else if (f.failure_class == failure_class::kNetwork) {
        ++streak;
        f.hint =
            "a fetchTarball or fetchurl without a hash downloads at every evaluation: pin its sha256, so Nix "
            "uses the copy in its store";
      }
      if (f.failure_class != failure_class::kNetwork) streak = 0;
      // Nix's own final error line, whole: the cause is at its end (a URL, a file, a line).
      plan_.errors.push_back({c.name, "could not evaluate the recipe: " + f.failure_class + ": " + f.message +
                                          (f.hint.empty() ? "" : " (" + f.hint + ")") +
                                          "; compared its files instead"});
      compare_files(c, " (files compared: evaluation failed)");
      return;
    }
    streak = 0;
    std::string build = "build #" + std::to_string(c.good.id);
    if (!c.good.drv_path) {
      compare_files(c, " (files compared: the store does not know what built it)");
      return;
    }
    if (drv == *c.good.drv_path)
      plan_.skipped.push_back({c.name, "unchanged since " + build + " (same derivation)"});
    else
      plan_.rebuild.push_back({c.name, "derivation changed since " + build});
  }

  void compare_files(const Candidate& c, const std::string& note) {
    std::string build = "build #" + std::to_string(c.good.id);
    std::string now = fingerprints_[c.name];
    if (!c.good.fingerprint)
      plan_.rebuild.push_back({c.name, build + " recorded no fingerprint"});
    else if (now == *c.good.fingerprint)
      plan_.skipped.push_back({c.name, "unchanged since " + build + " (same recipe files)" + note});
    else
      plan_.rebuild.push_back({c.name, "recipe files changed since " + build + note});
  }

  void finish() {
    report_progress(true);
    if (auto done = std::exchange(done_, nullptr)) done(std::move(plan_));
  }

  NightlyDeps d_;
  std::vector<std::string> targets_;
  std::function<void(NightlyPlan)> done_;
  NightlyPlan plan_;
  std::set<std::string> failed_repos_;
  std::map<std::string, std::string> fingerprints_;  // variant -> its recipe files' fingerprint now
  std::vector<Candidate> to_evaluate_;
  std::deque<size_t> singles_;  // candidates to evaluate alone
  int running_ = 0;
  size_t done_count_ = 0;
  std::map<std::string, int> network_streak_;  // repo -> evaluations in a row that could not download
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::steady_clock::time_point last_progress_{};
};

}  // namespace

void plan_nightly(const NightlyDeps& deps, std::vector<std::string> targets,
                  std::function<void(NightlyPlan)> done) {
  std::make_shared<NightlyRun>(deps, std::move(targets), std::move(done))->start();
}

}  // namespace ptbuild
