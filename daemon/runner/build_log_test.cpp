#include "daemon/runner/build_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <doctest/doctest.h>

#include "daemon/log_reader.h"
#include "tests/support/temp_dir.h"

using namespace ptbuild;

namespace {
std::string text_of(const std::string& path, int64_t tail = 0) {
  std::string out;
  for (const std::string& chunk : read_log(path, tail)) out += chunk;
  return out;
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

// Text that compresses about as well as a build log: varied numbers in repeated lines.
std::string log_lines(int from, int count) {
  std::string out;
  for (int i = from; i < from + count; ++i)
    out += "[" + std::to_string(i) + "/90000] Building CXX object caffe2/CMakeFiles/torch_cpu.dir/op_" +
           std::to_string(i * 7919 % 100003) + ".cpp.o\n";
  return out;
}
}  // namespace

TEST_CASE("build log: zstd on disk, readable at once by read_log and by a plain decoder") {
  testing::TempDir dir;
  std::string path = dir / "1.log.zst";
  BuildLog log;
  REQUIRE(log.open(path).empty());
  log.write("hello\n");
  log.write("world\n");
  log.flush();  // what a second's timer does for a quiet build
  CHECK(text_of(path) == "hello\nworld\n");
  log.write("more\n");
  // Beside it, the plain live file of the running attempt for an operator's tail -f: the daemon's
  // own lines are in it as they are written.
  CHECK(testing::read_file(dir / "1.live.log") == "hello\nworld\nmore\n");
  log.close();
  CHECK(text_of(path) == "hello\nworld\nmore\n");
  CHECK_FALSE(std::filesystem::exists(dir / "1.live.log"));
  CHECK(testing::read_file(path).substr(0, 4) == "\x28\xb5\x2f\xfd");  // zstd frames
  CHECK(log.bytes_seen() == 17);
}

TEST_CASE(
    "build log: what a build appended to the live file itself is taken into the log, not written there again") {
  testing::TempDir dir;
  std::string path = dir / "2.log.zst";
  dir.write("2.live.log", "what a crashed daemon left of the last attempt\n");
  BuildLog log;
  REQUIRE(log.open(path).empty());
  CHECK(log.live_path() == dir / "2.live.log");
  CHECK(testing::read_file(log.live_path()).empty());  // the attempt's own, from its start
  log.write("=== header\n");
  log.process_appends(true);
  std::ofstream(log.live_path(), std::ios::app) << "[1/2] built\n";  // the build, appending
  log.take("[1/2] built\n");                                         // the runner, reading it back
  log.write("=== the daemon, meanwhile\n");
  log.process_appends(false);
  log.write("=== done\n");
  log.flush();
  CHECK(text_of(path) == "=== header\n[1/2] built\n=== the daemon, meanwhile\n=== done\n");
  CHECK(testing::read_file(log.live_path()) == "=== header\n[1/2] built\n=== done\n");
  log.close();
  CHECK_FALSE(std::filesystem::exists(dir / "2.live.log"));
}

TEST_CASE("build log: a frame that is still open is read up to where it is written") {
  testing::TempDir dir;
  std::string path = dir / "1.log.zst";
  BuildLog log;
  REQUIRE(log.open(path).empty());
  std::string big = log_lines(0, 60000);  // several MB: zstd writes blocks out as they fill
  log.write(big);
  std::string partial = text_of(path);
  CHECK(!partial.empty());
  CHECK(big.starts_with(partial));
  log.close();
  CHECK(text_of(path) == big);
  CHECK(file_size(path) * 5 < big.size());  // compressed
}

TEST_CASE("build log: a retry appends, and the unfinished frame of a crash is closed first") {
  testing::TempDir dir;
  std::string path = dir / "1.log.zst";
  {
    BuildLog first;
    REQUIRE(first.open(path).empty());
    first.write("attempt 1\n");
    first.flush();  // on disk
  }
  // A crash in the middle of writing a frame: its first blocks on disk, the rest never.
  std::string big = log_lines(0, 60000);
  {
    BuildLog crashed;
    REQUIRE(crashed.open(path).empty());
    crashed.write(big);  // more than a frame holds: written at once
    CHECK_FALSE(crashed.pending());
  }
  std::string whole = testing::read_file(path);
  testing::TempDir copy;
  std::string cut = copy / "crash.log.zst";
  std::ofstream(cut, std::ios::binary) << whole.substr(0, whole.size() / 2);
  std::string partial = text_of(cut);
  REQUIRE(partial.size() > 10);
  CHECK(partial.starts_with("attempt 1\n[0/90000]"));
  CHECK(partial.size() < big.size());
  // The file as the crash left it: reopened for the next attempt, what reached the disk stays.
  BuildLog second;
  REQUIRE(second.open(cut).empty());
  second.write("attempt 2\n");
  second.close();
  CHECK(text_of(cut) == partial + "attempt 2\n");
}

TEST_CASE("build log: the disk guard keeps the head and the newest tail, with a marker between") {
  testing::TempDir dir;
  std::string path = dir / "1.log.zst";
  const uint64_t max = 64 * 1024;
  BuildLog log(max);
  REQUIRE(log.open(path).empty());
  std::mt19937 rng(7);
  std::string last;
  for (int round = 0; round < 200; ++round) {
    std::string chunk;  // incompressible enough to reach the guard
    for (int i = 0; i < 2000; ++i) chunk += static_cast<char>('a' + rng() % 26);
    last = "round " + std::to_string(round) + " " + chunk + "\n";
    log.write(last);
    log.flush();
  }
  log.close();
  std::string text = text_of(path);
  CHECK(text.starts_with("round 0 "));
  CHECK(text.ends_with(last));
  CHECK(text.find("[ptbuild: the middle of this log was left out (daemon.log_max)]") != std::string::npos);
  CHECK(text.find("round 100 ") == std::string::npos);
  uint64_t on_disk = file_size(path);
  for (int n = 1; n <= last_log_segment(path); ++n) on_disk += file_size(log_segment_path(path, n));
  CHECK(on_disk < max * 3 / 2);
  CHECK(log.bytes_seen() > 400 * 1000);
  CHECK(text_of(path, 1) == last);  // --tail reads the newest segment
}

TEST_CASE("build log: a plain log of an older version is appended to as plain text") {
  testing::TempDir dir;
  std::string path = dir.write("1.log", "attempt 1\n");
  BuildLog log;
  REQUIRE(log.open(path).empty());
  log.write("attempt 2\n");
  log.close();
  CHECK(testing::read_file(path) == "attempt 1\nattempt 2\n");
}

TEST_CASE("build log: an unwritable path, or a symlink planted in its place, is an error that names it") {
  BuildLog log;
  std::string err = log.open("/nonexistent-dir/1.log.zst");
  CHECK(err.find("/nonexistent-dir/1.log.zst") != std::string::npos);
  testing::TempDir dir;
  std::string victim = dir.write("victim", "precious\n");
  REQUIRE(::symlink(victim.c_str(), (dir / "2.log.zst").c_str()) == 0);
  BuildLog planted;
  CHECK(!planted.open(dir / "2.log.zst").empty());
  planted.write("overwrite\n");
  planted.close();
  CHECK(testing::read_file(victim) == "precious\n");
}

TEST_CASE(
    "build log: closed leaving the live file, it is moved aside - the next attempt gets one of its own") {
  testing::TempDir dir;
  std::string path = dir / "3.log.zst";
  BuildLog first;
  REQUIRE(first.open(path, BuildLog::Attempt::first).empty());
  first.write("attempt 1\n");
  std::string ended = first.close_leaving_live();
  CHECK(ended == dir / "3.live.log.ended");
  CHECK_FALSE(std::filesystem::exists(dir / "3.live.log"));
  CHECK(testing::read_file(ended) == "attempt 1\n");  // for the caller to remove
  BuildLog second;                                    // the retry, before the first's live file was removed
  REQUIRE(second.open(path, BuildLog::Attempt::retry).empty());
  second.write("attempt 2\n");
  std::filesystem::remove(ended);
  CHECK(testing::read_file(dir / "3.live.log") == "attempt 2\n");
  second.close();
  CHECK(text_of(path) == "attempt 1\nattempt 2\n");
  CHECK(second.close_leaving_live().empty());  // closed already: nothing left
}
