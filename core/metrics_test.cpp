#include "core/metrics.h"

#include <doctest/doctest.h>

#include "core/text.h"

using namespace ptbuild;

namespace {
size_t first_invalid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t len = utf8_char_length(text, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string::npos;
}
}  // namespace

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

TEST_CASE("metrics: measured peak memory is a histogram a family, in bytes") {
  MetricsSnapshot m;
  constexpr double kGiB = 1073741824.0;
  m.peak_memory_by_family = {{"pytorch", {0.5 * kGiB, 38 * kGiB}}, {"torchvision", {3 * kGiB}}};
  std::string text = render_prometheus(m);
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK(text.find(line + "\n") != std::string::npos);
  };
  has("# TYPE ptbuild_build_peak_memory_bytes histogram");
  has("ptbuild_build_peak_memory_bytes_bucket{family=\"pytorch\",le=\"1073741824\"} 1");
  has("ptbuild_build_peak_memory_bytes_bucket{family=\"pytorch\",le=\"34359738368\"} 1");
  has("ptbuild_build_peak_memory_bytes_bucket{family=\"pytorch\",le=\"51539607552\"} 2");
  has("ptbuild_build_peak_memory_bytes_count{family=\"torchvision\"} 1");
  has("ptbuild_build_peak_memory_bytes_bucket{family=\"torchvision\",le=\"+Inf\"} 1");
}

TEST_CASE("metrics: a label from bytes that are not UTF-8, or hold control characters, is still valid") {
  MetricsSnapshot m;
  m.build_seconds_by_family = {{"caf\xe9", {50}}, {std::string("a\0b\x01", 4), {60}}};
  m.failures_by_class = {{"x\ny", 1}};
  std::string text = render_prometheus(m);
  CHECK(text.find("family=\"caf\xef\xbf\xbd\"") != std::string::npos);  // U+FFFD, was a raw \xe9
  CHECK(text.find("family=\"a\xef\xbf\xbd"
                  "b\xef\xbf\xbd\"") != std::string::npos);
  CHECK(text.find('\0') == std::string::npos);
  CHECK(text.find("class=\"x\\ny\"") != std::string::npos);
  CHECK(first_invalid_utf8(text) == std::string::npos);
}
