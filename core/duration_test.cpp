#include "core/duration.h"

#include <doctest/doctest.h>

using namespace ptbuild;
using namespace std::chrono_literals;

TEST_CASE("durations parse in the config's spelling") {
  CHECK(parse_duration("6h") == Millis(6h));
  CHECK(parse_duration("30s") == Millis(30s));
  CHECK(parse_duration("1h30m") == Millis(90min));
  CHECK(parse_duration("500ms") == Millis(500));
  CHECK(parse_duration("2d") == Millis(48h));
  CHECK(parse_duration("0") == Millis(0));
  for (const char* bad : {"6 hours", "", "h", "6", "6x", "-1h", "1.5h", "6h ", "99999999999h"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}

TEST_CASE("durations print back exactly") {
  CHECK(format_duration(Millis(6h)) == "6h");
  CHECK(format_duration(Millis(90min)) == "1h30m");
  CHECK(format_duration(Millis(500)) == "500ms");
  CHECK(format_duration(Millis(0)) == "0s");
  for (const char* s : {"1d2h3m4s5ms", "45s", "2h"}) CHECK(format_duration(*parse_duration(s)) == s);
}

TEST_CASE("sizes: binary and decimal units, bytes, and refusals") {
  CHECK(parse_size("4GiB") == uint64_t{4} << 30);
  CHECK(parse_size("512MiB") == uint64_t{512} << 20);
  CHECK(parse_size("100MB") == 100'000'000u);
  CHECK(parse_size("1000") == 1000u);
  CHECK(parse_size("64KiB") == 65536u);
  CHECK_FALSE(parse_size("4 GiB"));
  CHECK_FALSE(parse_size("GiB"));
  CHECK_FALSE(parse_size("4gb"));
  CHECK_FALSE(parse_size(""));
  CHECK(format_size(uint64_t{4} << 30) == "4GiB");
  CHECK(format_size(1000) == "1000");
}
