#include "core/notify.h"

#include <nlohmann/json.hpp>

#include "core/diagnosis.h"

namespace ptbuild {

using json = nlohmann::json;

namespace {
template <class T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
}  // namespace

std::string event_text(const NotifyEvent& e) {
  std::string subject = e.variant ? *e.variant : e.builder ? "builder " + *e.builder : "ptbuild";
  std::string text = "ptbuild: " + subject;
  if (e.job) text += " #" + std::to_string(*e.job);
  text += ": " + e.event;
  if (e.failure_class) text += " (" + *e.failure_class + ")";
  if (e.message) text += ": " + *e.message;
  if (e.hint && !e.hint->empty()) text += "\nhint: " + *e.hint;
  for (const std::string& line : e.changes) text += "\nchanged: " + line;
  if (e.url) text += "\n" + *e.url;
  return text;
}

json to_json(const NotifyEvent& e) {
  return {{"event", e.event},
          {"time", e.time},
          {"job", or_null(e.job)},
          {"variant", or_null(e.variant)},
          {"builder", or_null(e.builder)},
          {"class", or_null(e.failure_class)},
          {"message", or_null(e.message)},
          {"hint", or_null(e.hint)},
          {"changes", e.changes},
          {"url", or_null(e.url)},
          {"text", event_text(e)}};
}

std::vector<std::string> outcome_events(const Job& ended, std::optional<JobState> previous) {
  std::vector<std::string> out;
  if (ended.kind == JobKind::bisect) return out;  // its bisection reports (docs/bisect.md)
  if (ended.kind == JobKind::publish) {
    if (ended.state == JobState::succeeded) out.push_back("published");
    return out;
  }
  if (ended.state == JobState::failed) {
    if (previous != JobState::failed) out.push_back("newly_failing");
    if (ended.failure && ended.failure->failure_class == failure_class::kVerifyFailed)
      out.push_back("verify_failed");
  } else if (ended.state == JobState::succeeded && previous == JobState::failed) {
    out.push_back("fixed");
  }
  return out;
}

NotifyEvent job_event(const std::string& event, const Job& job, const std::string& now,
                      const std::string& dashboard) {
  NotifyEvent e{event, now, job.id, job.variant, job.builder};
  if (job.failure) {
    e.failure_class = job.failure->failure_class;
    e.message = job.failure->message;
    e.hint = job.failure->hint;
  }
  if (!dashboard.empty()) e.url = dashboard + "/#/job/" + std::to_string(job.id);
  return e;
}

std::chrono::milliseconds notify_wait(int failed_tries) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(kNotifyFirstWait) *
         (1 << std::min(std::max(failed_tries - 1, 0), 10));
}

std::optional<HttpUrl> parse_http_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) return std::nullopt;
  url.remove_prefix(kScheme.size());
  HttpUrl out;
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) out.target = std::string(url.substr(slash));
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no credentials in a URL
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    out.port = std::string(authority.substr(colon + 1));
    authority = authority.substr(0, colon);
    if (out.port.empty() || out.port.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
  }
  out.host = std::string(authority);
  if (out.host.empty()) return std::nullopt;
  return out;
}

}  // namespace ptbuild
