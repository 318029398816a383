#include "core/metrics.h"

#include <doctest/doctest.h>

using namespace ptbuild;

TEST_CASE("metrics: series of docs/web.md in the text format, histogram buckets cumulative, labels escaped") {
  MetricsSnapshot m;
  m.jobs_by_state = {{"queued", 3}, {"running", 1}, {"failed", 2}};
  m.builders = {{"local", 1, 2, true}, {"gpu\"1", 0, 4, false}};
  m.build_seconds_by_family = {{"pytorch", {50, 4000, 9000}}};
  m.failures_by_class = {{"oom", 1}, {"cuda_disabled", 1}};
  m.hash_repairs = 5;
  m.log_bytes_written = 1234;
  std::string text = render_prometheus(m);
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK(text.find(line + "\n") != std::string::npos);
  };
  has("# TYPE ptbuild_jobs gauge");
  has("ptbuild_jobs{state=\"queued\"} 3");
  has("ptbuild_queue_length 3");
  has("ptbuild_builds_running{builder=\"local\"} 1");
  has("ptbuild_builder_slots{builder=\"gpu\\\"1\"} 4");
  has("ptbuild_builder_up{builder=\"gpu\\\"1\"} 0");
  has("# TYPE ptbuild_build_duration_seconds histogram");
  has("ptbuild_build_duration_seconds_bucket{family=\"pytorch\",le=\"60\"} 1");
  has("ptbuild_build_duration_seconds_bucket{family=\"pytorch\",le=\"3600\"} 1");
  has("ptbuild_build_duration_seconds_bucket{family=\"pytorch\",le=\"7200\"} 2");
  has("ptbuild_build_duration_seconds_bucket{family=\"pytorch\",le=\"+Inf\"} 3");
  has("ptbuild_build_duration_seconds_sum{family=\"pytorch\"} 13050");
  has("ptbuild_build_duration_seconds_count{family=\"pytorch\"} 3");
  has("ptbuild_failures_total{class=\"oom\"} 1");
  has("ptbuild_hash_repairs_total 5");
  has("ptbuild_log_bytes_written_total 1234");
}
