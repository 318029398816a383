// start_child(): what every child of the daemon gets, checked from inside a real child.
#include "daemon/runner/spawn.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <boost/asio/io_context.hpp>

#include "tests/support/temp_dir.h"

extern char** environ;

using namespace ptbuild;

namespace {
struct Ran {
  int exit_code = -1;
  std::string out;
};

// Runs argv to its end on a loop of its own, its output in a file. `gate`, when given, is
// created once the child has started (and been given its priority).
Ran run(const std::vector<std::string>& argv, const std::string& cwd = "", const std::string& gate = "") {
  testing::TempDir dir;
  std::string path = dir / "out";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  boost::asio::io_context io;
  std::string error;
  std::unique_ptr<Child> child = start_child(io, argv, cwd, environ, fd, fd, error);
  ::close(fd);
  REQUIRE_MESSAGE(child, error);
  if (!gate.empty()) std::ofstream(gate) << "open";
  Ran ran;
  child->async_wait([&](int code) { ran.exit_code = code; });
  io.run();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ran.out = text.str();
  return ran;
}
}  // namespace

TEST_CASE(
    "spawn: a child leads its own process group, inherits no descriptor, runs at SCHED_IDLE in its folder") {
  testing::TempDir dir;
  std::string secret = dir / "daemon-only";  // stands for the daemon's socket and database
  int leaked = ::open(secret.c_str(), O_WRONLY | O_CREAT, 0600);  // no O_CLOEXEC: exec alone would pass it on
  REQUIRE(leaked > 2);
  Ran r = run(
      {"sh", "-c",
       "echo pid=$$; echo pgid=$(cut -d' ' -f5 /proc/$$/stat); echo policy=$(cut -d' ' -f41 /proc/$$/stat); "
       "for f in /proc/$$/fd/*; do echo fd=$(readlink $f); done; echo cwd=$(pwd); echo argv0=$0"},
      "/tmp");
  ::close(leaked);
  CHECK(r.exit_code == 0);
  std::istringstream lines(r.out);
  std::map<std::string, std::string> facts;
  std::set<std::string> open_files;
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("fd="))
      open_files.insert(line.substr(3));
    else if (size_t eq = line.find('='); eq != std::string::npos)
      facts[line.substr(0, eq)] = line.substr(eq + 1);
  CAPTURE(r.out);
  REQUIRE(!facts["pid"].empty());
  CHECK(facts["pgid"] == facts["pid"]);   // its own group, led by it
  CHECK(facts["policy"] == "5");          // SCHED_IDLE
  CHECK(open_files.count("/dev/null"));   // stdin
  CHECK_FALSE(open_files.count(secret));  // the daemon's descriptors stay the daemon's
  CHECK(facts["cwd"] == "/tmp");
  CHECK(facts["argv0"] == "sh");  // as given, not the resolved path
}

TEST_CASE("spawn: exit codes as the build gave them, 128+N for a signal, and a missing program is an error") {
  CHECK(run({"sh", "-c", "exit 3"}).exit_code == 3);
  CHECK(run({"sh", "-c", "kill -9 $$"}).exit_code == 137);
  CHECK(run({"sh", "-c", "exit 9"}).exit_code == 9);  // not to be taken for SIGKILL
  boost::asio::io_context io;
  std::string error;
  CHECK(start_child(io, {"no-such-program-ptbuild"}, "", environ, 1, 2, error) == nullptr);
  CHECK(error == "cannot start no-such-program-ptbuild: No such file or directory");
  CHECK(start_child(io, {"sh", "-c", "true"}, "/no/such/folder", environ, 1, 2, error) == nullptr);
  CHECK(error == "cannot start sh: No such file or directory");
}
