#include "daemon/notifier/alerts.h"
#include "core/protocol.h"

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/backend.h"
#include "core/clock.h"
#include "core/notify.h"
#include "daemon/changes/changes.h"
#include "daemon/notifier/notifier.h"
#include "daemon/runner/off_loop.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/store/store.h"

namespace ptbuild {

namespace {
// How often the builders and the queue are looked at for a builder gone down or a held queue.
constexpr auto kLookEvery = std::chrono::seconds(5);
constexpr const char* kNightlyReason = "nightly:";
}  // namespace

struct Alerts::Timer {
  explicit Timer(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
};

Alerts::Alerts(boost::asio::io_context& io, Store& store, Scheduler& scheduler, OffLoop& off_loop,
               Notifier& notifier, Clock& clock, const Config& config)
    : timer_(std::make_unique<Timer>(io)),
      store_(store),
      scheduler_(scheduler),
      off_loop_(off_loop),
      notifier_(notifier),
      clock_(clock),
      config_(config) {}

Alerts::~Alerts() = default;

void Alerts::start() {
  scheduler_.follow_jobs([this](const Job& job) { on_job(job); });
  look();
}

std::string Alerts::dashboard() const {
  if (!config_.web.url.empty()) return config_.web.url;
  return config_.web.listen.empty() ? "" : "http://" + config_.web.listen;
}

void Alerts::on_job(const Job& job) {
  if (!is_finished(job.state) || job.state == JobState::cancelled) return;
  std::optional<JobState> previous;
  if (job.kind == JobKind::build) {
    try {
      previous = store_.previous_outcome(job.variant, job.id);
    } catch (const std::exception& e) {
      spdlog::warn("job #{}: its previous build could not be read: {}", job.id, e.what());
    }
  }
  std::vector<std::string> events = outcome_events(job, previous);
  if (job.kind != JobKind::build || job.state != JobState::failed) return ended(job, events, {});
  // A build that failed is mostly recorded with its changes; one that failed before it built (its
  // sources) or after (its verification) has them found now.
  if (job.changes_json) {
    nlohmann::json changes = nlohmann::json::parse(*job.changes_json, nullptr, false);
    std::vector<std::string> summary;
    if (changes.is_object() && changes["summary"].is_array())
      for (const nlohmann::json& line : changes["summary"])
        if (line.is_string()) summary.push_back(line.get<std::string>());
    return ended(job, events, summary);
  }
  ChangesQuery query;
  try {
    query = changes_query(store_, nix_program(config_.backend), job);
  } catch (const std::exception& e) {
    spdlog::warn("job #{}: what changed could not be asked: {}", job.id, e.what());
    return ended(job, events, {});
  }
  ++finding_changes_;
  off_loop_.run([query = std::move(query)] { return what_changed(query); },
                [this, job, events](Changes changes) {
                  --finding_changes_;
                  try {
                    store_.set_changes(job.id, protocol::json_text(to_json(changes)));
                  } catch (const std::exception& e) {
                    spdlog::warn("job #{}: what changed was not recorded: {}", job.id, e.what());
                  }
                  ended(job, events, changes.summary);
                });
}

void Alerts::ended(const Job& job, const std::vector<std::string>& events,
                   const std::vector<std::string>& changes) {
  for (const std::string& event : events) {
    NotifyEvent e = job_event(event, job, clock_.rfc3339(), dashboard());
    e.changes = changes;
    notifier_.send(e);
  }
  if (!job.reason.starts_with(kNightlyReason) || job.kind != JobKind::build) return;
  (job.state == JobState::succeeded ? nightly_.succeeded : nightly_.failed)++;
  if (std::ranges::find(events, "newly_failing") != events.end())
    nightly_.newly_failing.push_back(job.variant + (changes.empty() ? "" : ": " + changes.front()));
  if (std::ranges::find(events, "fixed") != events.end()) nightly_.fixed.push_back(job.variant);
  int64_t left = 0;
  try {
    left = store_.count_active(kNightlyReason);
  } catch (const std::exception& e) {
    spdlog::warn("the nightly's jobs could not be counted: {}", e.what());
    return;
  }
  if (left > 0 || finding_changes_ > 0) return;
  NotifyEvent summary{"nightly", clock_.rfc3339()};
  summary.message = "nightly: " + std::to_string(nightly_.succeeded + nightly_.failed) + " built, " +
                    std::to_string(nightly_.succeeded) + " succeeded, " + std::to_string(nightly_.failed) +
                    " failed, " + std::to_string(nightly_.newly_failing.size()) + " newly failing, " +
                    std::to_string(nightly_.fixed.size()) + " fixed";
  for (const std::string& v : nightly_.newly_failing) summary.changes.push_back("newly failing: " + v);
  for (const std::string& v : nightly_.fixed) summary.changes.push_back("fixed: " + v);
  if (std::string d = dashboard(); !d.empty()) summary.url = d + "/";
  notifier_.send(summary);
  nightly_ = {};
}

void Alerts::look() {
  Scheduler::Summary now = scheduler_.summary();
  for (const Scheduler::BuilderSummary& b : now.builders) {
    bool down = b.state.starts_with("down");
    bool& was = down_[b.spec.name];
    if (down && !was) {
      NotifyEvent e{"builder_down", clock_.rfc3339()};
      e.builder = b.spec.name;
      e.message = b.state;
      if (std::string d = dashboard(); !d.empty()) e.url = d + "/#/builders";
      notifier_.send(e);
    }
    was = down;
  }
  // The queue is held when a build waits for memory or disk (docs/resources.md).
  std::optional<Job> waiting;
  std::string why;
  try {
    for (const Job& job : store_.jobs_in_state(JobState::queued))
      if (std::optional<std::string> w = scheduler_.waiting(job.id);
          w && (w->starts_with("memory:") || w->starts_with("disk:"))) {
        waiting = job;
        why = *w;
        break;
      }
  } catch (const std::exception& e) {
    spdlog::warn("the queue could not be read: {}", e.what());
  }
  if (waiting && !held_) {
    NotifyEvent e = job_event("held", *waiting, clock_.rfc3339(), dashboard());
    e.message = why;
    notifier_.send(e);
  }
  held_ = waiting.has_value();
  timer_->timer.expires_after(kLookEvery);
  timer_->timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) look();
  });
}

}  // namespace ptbuild
