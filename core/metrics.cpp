#include "core/metrics.h"

#include <algorithm>
#include <cstdio>

#include "core/text.h"

namespace ptbuild {

namespace {

// Label values: valid UTF-8 (a recipe named in Latin-1 made every later scrape invalid), no
// control character raw (NUL included), backslash, double quote and newline escaped (the text
// format's rule).
std::string label(std::string_view raw) {
  std::string value = valid_utf8(raw);
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      out += "\xef\xbf\xbd";  // U+FFFD: the text format has no escape for them
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, const std::string& labels, const std::string& value) {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ' + value + '\n';
}

// One Prometheus histogram a family: cumulative buckets, +Inf, sum and count.
template <size_t N>
void histogram(std::string& out, const std::string& name, const char* help,
               const std::map<std::string, std::vector<double>>& by_family, const double (&bounds)[N]) {
  header(out, name.c_str(), "histogram", help);
  for (const auto& [family, values] : by_family) {
    std::string fam = "family=\"" + label(family) + "\"";
    double sum = 0;
    for (double v : values) sum += v;
    for (double bound : bounds) {
      auto n = std::count_if(values.begin(), values.end(), [&](double v) { return v <= bound; });
      sample(out, (name + "_bucket").c_str(), fam + ",le=\"" + number(bound) + "\"", std::to_string(n));
    }
    sample(out, (name + "_bucket").c_str(), fam + ",le=\"+Inf\"", std::to_string(values.size()));
    sample(out, (name + "_sum").c_str(), fam, number(sum));
    sample(out, (name + "_count").c_str(), fam, std::to_string(values.size()));
  }
}

}  // namespace

std::string render_prometheus(const MetricsSnapshot& m) {
  std::string out;
  header(out, "ptbuild_jobs", "gauge", "Jobs in the database by state.");
  for (const auto& [state, n] : m.jobs_by_state)
    sample(out, "ptbuild_jobs", "state=\"" + label(state) + "\"", std::to_string(n));

  auto queued = m.jobs_by_state.find("queued");
  header(out, "ptbuild_queue_length", "gauge", "Jobs waiting to start.");
  sample(out, "ptbuild_queue_length", "",
         std::to_string(queued == m.jobs_by_state.end() ? 0 : queued->second));

  header(out, "ptbuild_builds_running", "gauge", "Builds running on each builder.");
  for (const auto& b : m.builders)
    sample(out, "ptbuild_builds_running", "builder=\"" + label(b.name) + "\"", std::to_string(b.running));
  header(out, "ptbuild_builder_slots", "gauge", "Build slots of each builder.");
  for (const auto& b : m.builders)
    sample(out, "ptbuild_builder_slots", "builder=\"" + label(b.name) + "\"", std::to_string(b.slots));
  header(out, "ptbuild_builder_up", "gauge",
         "1 while a builder takes builds, 0 while it is down or resting.");
  for (const auto& b : m.builders)
    sample(out, "ptbuild_builder_up", "builder=\"" + label(b.name) + "\"", b.up ? "1" : "0");

  header(out, "ptbuild_builder_memory_bytes", "gauge",
         "Memory of each builder: total (within its cap), available, committed to its builds.");
  for (const auto& b : m.builders)
    if (b.facts)
      for (auto [kind, bytes] :
           {std::pair{"total", b.memory_total}, std::pair{"available", b.memory_available},
            std::pair{"committed", b.memory_committed}})
        sample(out, "ptbuild_builder_memory_bytes", "builder=\"" + label(b.name) + "\",kind=\"" + kind + "\"",
               std::to_string(bytes));
  header(out, "ptbuild_builder_free_bytes", "gauge",
         "Free space of each builder's store and build directory.");
  for (const auto& b : m.builders)
    if (b.facts)
      for (auto [path, bytes] : {std::pair{"store", b.store_free}, std::pair{"build_dir", b.build_dir_free}})
        sample(out, "ptbuild_builder_free_bytes", "builder=\"" + label(b.name) + "\",path=\"" + path + "\"",
               std::to_string(bytes));
  header(out, "ptbuild_oom_kills_total", "counter",
         "Builds killed or stopped for memory (requeued, or failed the second time) since ptbuildd started.");
  sample(out, "ptbuild_oom_kills_total", "", std::to_string(m.oom_kills));

  header(out, "ptbuild_gc_freed_bytes_total", "counter",
         "Bytes Nix's GC freed for ptbuild gc since ptbuildd started.");
  sample(out, "ptbuild_gc_freed_bytes_total", "", std::to_string(m.gc_freed_bytes));

  header(out, "ptbuild_notifications_total", "counter",
         "Notification deliveries since ptbuildd started, by event and result (delivered, retried, failed).");
  for (const auto& [key, n] : m.notifications)
    sample(out, "ptbuild_notifications_total",
           "event=\"" + label(key.first) + "\",result=\"" + label(key.second) + "\"", std::to_string(n));

  histogram(out, "ptbuild_build_duration_seconds", "Duration of finished builds by variant family.",
            m.build_seconds_by_family, kBuildSecondsBuckets);
  histogram(out, "ptbuild_build_peak_memory_bytes",
            "Measured peak memory of finished builds by variant family (docs/resources.md).",
            m.peak_memory_by_family, kPeakMemoryBuckets);

  header(out, "ptbuild_failures_total", "counter", "Failed jobs by failure class (docs/failures.md).");
  for (const auto& [cls, n] : m.failures_by_class)
    sample(out, "ptbuild_failures_total", "class=\"" + label(cls) + "\"", std::to_string(n));
  header(out, "ptbuild_hash_repairs_total", "counter", "Fixed-output hashes repaired in recipes.");
  sample(out, "ptbuild_hash_repairs_total", "", std::to_string(m.hash_repairs));
  header(out, "ptbuild_log_bytes_written_total", "counter",
         "Build log bytes taken from builds since ptbuildd started.");
  sample(out, "ptbuild_log_bytes_written_total", "", std::to_string(m.log_bytes_written));
  return out;
}

}  // namespace ptbuild
