// Notifications (docs/notifications.md): which events a job's end makes, what an event says, and
// how a delivery is retried. Pure; daemon/notifier delivers them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/job.h"

namespace ptbuild {

struct NotifyEvent {
  std::string event;  // one of kNotifyEvents (core/config.h)
  std::string time;   // RFC 3339 UTC
  std::optional<int64_t> job;
  std::optional<std::string> variant, builder, failure_class, message, hint, url;
  std::vector<std::string> changes;  // the first lines of what changed since the last good build
};

// The event's JSON of docs/notifications.md, with a "text" line for chat webhooks (Slack, Matrix).
nlohmann::json to_json(const NotifyEvent& e);
std::string event_text(const NotifyEvent& e);

// The events a finished job makes. `previous`: the state of the variant's build before it (null
// when it is the first). A build that fails after one that did not is newly failing; one that
// succeeds after a failure is fixed; a failed verification is its own event too.
std::vector<std::string> outcome_events(const Job& ended, std::optional<JobState> previous);

// The event of a job, filled from the job; `dashboard` is the web page's address ("" for none).
NotifyEvent job_event(const std::string& event, const Job& job, const std::string& now,
                      const std::string& dashboard);

// Deliveries are tried kNotifyTries times, waiting kNotifyFirstWait, then twice as long each time.
inline constexpr int kNotifyTries = 5;
inline constexpr auto kNotifyFirstWait = std::chrono::seconds(1);
std::chrono::milliseconds notify_wait(int failed_tries);

// http://host[:port]/path -> its parts; nullopt when it is not one.
struct HttpUrl {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};
std::optional<HttpUrl> parse_http_url(std::string_view url);

}  // namespace ptbuild
