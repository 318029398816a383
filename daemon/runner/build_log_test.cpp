#include "daemon/runner/build_log.h"

#include <doctest/doctest.h>

#include "tests/support/temp_dir.h"

using namespace ptbuild;

TEST_CASE("build log: under the cap everything is kept") {
  testing::TempDir dir;
  BuildLog log(100, 50);
  REQUIRE(log.open(dir / "1.log").empty());
  log.write("hello\n");
  log.write("world\n");
  log.close();
  CHECK(testing::read_file(dir / "1.log") == "hello\nworld\n");
}

TEST_CASE("build log: over the cap the head and the tail are kept with a marker between") {
  testing::TempDir dir;
  BuildLog log(10, 8);
  REQUIRE(log.open(dir / "1.log").empty());
  log.write("HEADHEAD--");           // fills the head exactly
  for (int i = 0; i < 100; ++i) log.write("m");
  log.write("the-TAIL");             // the last 8 bytes
  log.close();
  std::string text = testing::read_file(dir / "1.log");
  CHECK(text.starts_with("HEADHEAD--"));
  CHECK(text.ends_with("the-TAIL"));
  CHECK(text.find("[ptbuild: 100 bytes of log left out here]") != std::string::npos);
  CHECK(log.bytes_seen() == 118);
}

TEST_CASE("build log: a retry appends to the same file") {
  testing::TempDir dir;
  {
    BuildLog first;
    REQUIRE(first.open(dir / "1.log").empty());
    first.write("attempt 1\n");
  }
  BuildLog second;
  REQUIRE(second.open(dir / "1.log").empty());
  second.write("attempt 2\n");
  second.close();
  CHECK(testing::read_file(dir / "1.log") == "attempt 1\nattempt 2\n");
}

TEST_CASE("build log: an unwritable path is an error that names it") {
  BuildLog log;
  std::string err = log.open("/nonexistent-dir/1.log");
  CHECK(err.find("/nonexistent-dir/1.log") != std::string::npos);
}
