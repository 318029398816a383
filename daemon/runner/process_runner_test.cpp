#include "daemon/runner/process_runner.h"

#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include "daemon/runner/spawn.h"
#include "tests/support/temp_dir.h"

using namespace ptbuild;

namespace {

struct Ran {
  std::string output;  // what on_output was given, in order
  std::optional<int> exit_code;
};

// Runs `script` under /bin/sh with the runner, until it has exited and its output ended.
Ran run(const std::string& script, std::optional<OutputFile> file) {
  boost::asio::io_context io;
  ProcessRunner runner(io);
  Ran ran;
  BuildCommand command{{"/bin/sh", "-c", script}, "", "", file};
  std::string error;
  auto process = runner.start(command, {},
                              {[&](std::string_view chunk) { ran.output.append(chunk); },
                               [&](ExitStatus s) { ran.exit_code = s.exit_code; }},
                              error);
  REQUIRE_MESSAGE(process, error);
  for (int i = 0; i < 600 && !ran.exit_code; ++i) io.run_for(std::chrono::milliseconds(100));
  return ran;
}

std::string expected_lines(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) out += std::to_string(i) + "\n";
  return out;
}

}  // namespace

TEST_CASE(
    "process runner: a build that appends to its output file - read back whole, without what was there before") {
  testing::TempDir dir;
  std::string file = dir.write("7.live.log", "=== ptbuild: the daemon's header\n");
  Ran ran = run("seq 1 200000; echo 'error: the end' >&2; exit 3", OutputFile{file});
  REQUIRE(ran.exit_code == 3);
  std::string printed = expected_lines(200000) + "error: the end\n";
  CHECK(ran.output.size() == printed.size());
  CHECK(ran.output == printed);  // stdout and stderr, all of it, the last line too
  // The plain file has it all, as the build wrote it, after the daemon's header.
  CHECK(testing::read_file(file) == "=== ptbuild: the daemon's header\n" + printed);
}

TEST_CASE("process runner: keep 0 frees the output file's blocks behind the reader - the output is whole") {
  testing::TempDir dir;
  // What an earlier step of the attempt printed (3 MiB) is freed too, not only this process's.
  std::string file = dir.write("8.live.log", std::string(3 << 20, 'x'));
  // ~15 MB, with a pause in the middle so that it is read while it grows.
  Ran ran = run("seq 1 1000000; sleep 0.3; seq 1000001 2000000", OutputFile{file, 0});
  REQUIRE(ran.exit_code == 0);
  std::string printed = expected_lines(2000000);
  CHECK(ran.output.size() == printed.size());
  CHECK(ran.output == printed);
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK(static_cast<size_t>(st.st_size) == (3u << 20) + printed.size());  // tail -f still sees it grow
  INFO("bytes on disk: ", st.st_blocks * 512);
  CHECK(st.st_blocks * 512 <= 2 * 1024 * 1024);  // what is left: less than the last 1 MiB step
}

TEST_CASE("process runner: without an output file (a short command), stdout and stderr come through a pipe") {
  testing::TempDir dir;
  Ran ran = run("cd " + dir.path() + " && seq 1 100000 && echo 'two' >&2", std::nullopt);
  REQUIRE(ran.exit_code == 0);
  CHECK(ran.output == expected_lines(100000) + "two\n");
  CHECK(std::filesystem::is_empty(dir.path()));  // no file anywhere
}

TEST_CASE(
    "remove at build priority: a build's plain log is removed by an rm at the builds' priority, or here") {
  testing::TempDir dir;
  dir.write("bin/rm", "#!/bin/sh\nchrt -p $$ > " + dir / "policy" + "\nexec /bin/rm \"$@\"\n");
  std::filesystem::permissions(dir / "bin/rm", std::filesystem::perms::owner_all);
  std::string path_before = std::getenv("PATH");
  ::setenv("PATH", (dir / "bin" + ":" + path_before).c_str(), 1);
  dir.write("1.live.log", std::string(1 << 20, 'x'));
  std::string error = remove_at_build_priority(dir / "1.live.log");
  ::setenv("PATH", path_before.c_str(), 1);
  CHECK(error == "");
  CHECK_FALSE(std::filesystem::exists(dir / "1.live.log"));
  CHECK(testing::read_file(dir / "policy").find("SCHED_IDLE") != std::string::npos);
  // What is already gone is no error; what cannot be removed is named.
  CHECK(remove_at_build_priority(dir / "1.live.log") == "");
  std::filesystem::create_directories(dir / "a-folder/inside");
  CHECK(remove_at_build_priority(dir / "a-folder") ==
        "cannot remove " + dir / "a-folder" + ": Is a directory");
}
