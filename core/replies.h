// One typed reply per op (docs/protocol.md), beside the typed requests (core/requests.h): the
// daemon's ops build them, the client reads them, and the JSON on the wire is written and read
// here only. tests/golden/replies.jsonl holds what every op answers, byte for byte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/bisect.h"
#include "core/changes.h"
#include "core/job.h"

namespace ptbuild::protocol {

// A job as replies show it: the job object of docs/jobs.md, with what only some replies add.
struct JobView {
  Job job;
  std::optional<bool> fresh;  // "new": queued by this request (nightly)
  // "eta" (status, for jobs not finished): when it should end; a null eta is still shown.
  bool has_eta = false;
  std::optional<std::string> eta;
};

// queue, retry, publish: what each target came to.
struct QueuedJob {
  int64_t id = 0;
  std::string variant;
  JobState state = JobState::queued;
  bool fresh = true;  // "new": false when an existing queued job was returned
};
struct QueueReply {
  std::vector<QueuedJob> jobs;
};

// What a builder has and what its builds hold (docs/resources.md), in bytes.
struct BuilderResourcesView {
  uint64_t memory_total = 0;
  uint64_t memory_available = 0;
  uint64_t committed = 0;  // held or expected by its builds
  uint64_t reserve = 0;
  int cores = 0;
  uint64_t store_free = 0;
  uint64_t build_dir_free = 0;
  uint64_t min_free = 0;
  std::optional<double> pressure;  // PSI memory full avg10, %
  uint64_t store_size = 0;         // of the store's file system (the dashboard's disk bar)
  struct Holding {
    int64_t job = 0;
    uint64_t memory = 0;
    std::optional<uint64_t> build_dir;  // its build directory's size now, where it is walked
  };
  std::vector<Holding> holding;
};

struct BuilderView {
  std::string name;
  std::string uri;
  std::string state;  // "up", "disabled", "checking …", "down until T: reason"
  int running = 0;
  int slots = 0;
  std::vector<std::string> systems;
  std::vector<std::string> supported_features;
  std::vector<std::string> mandatory_features;
  double speed_factor = 1.0;
  int done = 0;
  std::optional<std::string> last_error;
  std::optional<BuilderResourcesView> resources;  // null until its facts are read
};
struct BuildersReply {  // builders, set_builder
  std::vector<BuilderView> builders;
};

// A [[notify]] hook's deliveries (docs/notifications.md).
struct NotifyHookView {
  std::string target;  // "command …" or "webhook …"
  int64_t delivered = 0;
  int64_t failed = 0;  // given up after every try
  bool failing = false;
  std::optional<std::string> last_error, last_error_at;
};

struct SchedulerView {
  bool paused = false;
  bool draining = false;
  int running = 0;
  int slots = 0;
  std::vector<BuilderView> builders;
  std::vector<NotifyHookView> notify;
  // When the queue should be done (the latest ETA), status only; none while a queued build's
  // length is not known.
  std::optional<std::string> eta;
};
struct StatusReply {
  std::vector<JobView> jobs;
  SchedulerView scheduler;
};

struct JobsReply {  // jobs, wait
  std::vector<JobView> jobs;
  std::optional<int64_t> next_before;  // jobs: more than a page was asked for; the next page's `before`
};

struct VariantView {
  std::string name;
  std::string repo;
  std::optional<std::string> family, python, cuda, gpu_arch, isa, extra, platform;
  std::string recipe;
  std::optional<int64_t> last_job;
  std::optional<std::string> last_state;
  std::optional<bool> tracked;  // whether git tracks its recipe; null where not known
};
struct MatrixReply {
  std::vector<VariantView> variants;
};

struct CancelledJob {
  int64_t id = 0;
  std::string variant;
  std::string outcome;  // "cancelled", "stopping", "already finished" (and who waits for it)
};
struct CancelReply {
  std::vector<CancelledJob> jobs;
};

struct FixView {
  int64_t id = 0;
  int64_t job = 0;
  std::string variant;
  std::string drv;
  std::string file;
  int line = 0;
  std::string old_hash;
  std::string new_hash;
  std::string at;
};
struct FixesReply {
  std::vector<FixView> fixes;
};

// gc (docs/resources.md): the builds whose GC root went (or would go), and what Nix's GC found.
struct GcReply {
  bool dry_run = false;
  struct Dropped {
    int64_t job = 0;
    std::string variant;
    std::string out_path;
    uint64_t size = 0;  // its NAR size (0 when no longer in the store)
  };
  std::vector<Dropped> dropped;
  int64_t kept = 0;        // builds whose output stays
  int64_t dead_paths = 0;  // store paths nothing roots (dry run: before the roots above go)
  uint64_t dead_bytes = 0;
  uint64_t freed_bytes = 0;  // what the collection freed (0 in a dry run)
};

struct PauseReply {  // pause, resume
  bool paused = false;
};
struct DrainReply {
  bool draining = true;
  int running = 0;
};

struct NightlyEntry {
  std::string name;  // the variant ("variant" on the wire), or what failed to evaluate ("what")
  std::string reason;
};
struct NightlyReply {
  std::vector<JobView> jobs;  // with "new"
  std::vector<NightlyEntry> skipped;
  std::vector<NightlyEntry> errors;
};
struct NightlyProgress {  // the "progress" event
  int64_t evaluated = 0;
  int64_t total = 0;
};

struct LogText {  // the "log" event
  std::string text;
};
struct LogReply {  // once the log has been sent (and, with follow, the job has ended)
  Job job;
};

nlohmann::json to_json(const JobView& v);
nlohmann::json to_json(const QueueReply& r);
nlohmann::json to_json(const BuilderView& b);
nlohmann::json to_json(const BuildersReply& r);
nlohmann::json to_json(const SchedulerView& s);
nlohmann::json to_json(const StatusReply& r);
nlohmann::json to_json(const JobsReply& r);
nlohmann::json to_json(const MatrixReply& r);
nlohmann::json to_json(const CancelReply& r);
nlohmann::json to_json(const FixesReply& r);
nlohmann::json to_json(const PauseReply& r);
nlohmann::json to_json(const GcReply& r);
nlohmann::json to_json(const DrainReply& r);
nlohmann::json to_json(const NightlyReply& r);
nlohmann::json to_json(const NightlyProgress& p);
nlohmann::json to_json(const LogText& t);
nlohmann::json to_json(const LogReply& r);

// bisect, bisect_status, bisect_cancel (docs/bisect.md).
struct BisectView {
  int64_t id = 0;
  std::string variant;
  std::string good, bad;
  std::string state;  // running, found, ambiguous, failed, cancelled
  std::vector<BisectCommit> commits;
  std::optional<std::string> first_bad;
  std::string message;
  std::optional<Changes> changes;  // of the first bad commit against the last good one
  int builds = 0;                  // bisect jobs queued so far
  int max_builds = 0;              // log2(commits) + 1
  std::string created_at;
  std::optional<std::string> finished_at;
};
struct BisectsReply {
  std::vector<BisectView> bisects;
};
nlohmann::json to_json(const BisectsReply& r);

// provenance (docs/provenance.md): a verified build's signed statement, as written.
struct ProvenanceReply {
  int64_t job = 0;
  std::string out_path;
  std::string envelope;  // the DSSE envelope's JSON text; "statement" in the reply is its payload
};
nlohmann::json to_json(const ProvenanceReply& r);

// Reading a reply (or an event's data); throws ReplyError naming what does not fit.
struct ReplyError {
  std::string message;
};
template <class Reply>
Reply reply_from(const nlohmann::json& result);

Job job_from_json(const nlohmann::json& j);

}  // namespace ptbuild::protocol
