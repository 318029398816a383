// The client's screens in a real terminal (tmux): the matrix grid with colours and its plain
// fallback, the live status --watch with progress bars and ETAs, log -f ending with the state.
#include <unistd.h>

#include <regex>
#include <sstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

class Tmux {
 public:
  explicit Tmux(const std::string& name) : session_(name + std::to_string(::getpid())) {
    ok_ = run_process(
              // A plain bash: the machine's login profile is not the test's (one that ran
              // `pyenv rehash` waited forever on a lock a killed shell had left).
              {"/usr/bin/tmux", "-L", session_, "new-session", "-d", "-s", session_, "-x", "120", "-y", "40",
               "/bin/bash --noprofile --norc"})
              .exit_code == 0;
    if (ok_) tmux({"set-option", "-g", "remain-on-exit", "on"});
  }
  ~Tmux() {
    if (ok_) run_process({"/usr/bin/tmux", "-L", session_, "kill-server"});
  }
  bool ok() const { return ok_; }
  void type(const std::string& line) { tmux({"send-keys", "-t", session_, line, "Enter"}); }
  std::string screen(bool with_escapes = false) {
    std::vector<std::string> args{"capture-pane", "-p", "-t", session_};
    if (with_escapes) args.push_back("-e");
    return tmux(args).out;
  }

 private:
  ProcessResult tmux(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/tmux", "-L", session_});
    return run_process(args);
  }
  std::string session_;
  bool ok_ = false;
};

// Times, ids and durations differ from run to run; the screen's shape does not.
std::string normalized(std::string s) {
  s = std::regex_replace(s, std::regex(R"(\d\d-\d\d \d\d:\d\d:\d\d)"), "MM-DD hh:mm:ss");
  s = std::regex_replace(s, std::regex(R"(\s+$)"), "");
  std::string out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  while (out.size() > 1 && out.ends_with("\n\n")) out.pop_back();
  return out;
}

// The screen up to the end of the last line that contains `marker` (the shell prompt that comes
// back after the command differs from machine to machine).
std::string through_last(const std::string& screen, const std::string& marker) {
  size_t at = screen.rfind(marker);
  if (at == std::string::npos) return screen;
  size_t end = screen.find('\n', at);
  return screen.substr(0, end == std::string::npos ? std::string::npos : end + 1);
}

std::string expected(const std::string& name) {
  return read_file(source_dir() + "/tests/fixtures/screens/" + name);
}

}  // namespace

TEST_CASE(
    "terminal: the matrix grid in colour on a terminal - plain with NO_COLOR - and the expected screen") {
  Daemon d("max_parallel = 2\n");
  for (const char* v : {"pytorch-python313-cuda13_0-sm90-avx512", "pytorch-python313-cuda13_0-sm90-avx2",
                        "pytorch-python313-cuda13_0-sm120-avx512", "pytorch-python313-cpu-avx2"})
    d.add_sh_recipe(v, "mkdir $out");
  d.add_sh_recipe("pytorch-python313-cuda13_0-sm120-avx2", "exit 1");
  d.start();
  d.client_json({"queue", "all"});
  d.client({"wait", "all", "--timeout", "60s"});
  Tmux t("ptbuild-matrix");
  if (!t.ok()) {
    MESSAGE("tmux is not available: skipped");
    return;
  }
  std::string ptbuild = build_dir() + "/ptbuild --socket " + d.socket();
  t.type("clear; " + ptbuild + " matrix");
  REQUIRE(
      eventually([&] { return t.screen().find("legend:") != std::string::npos; }, std::chrono::seconds(10)));
  std::string coloured = t.screen(true);
  CHECK(coloured.find("\x1b[32m") != std::string::npos);  // ok in green
  CHECK(coloured.find("\x1b[31m") != std::string::npos);  // FAIL in red
  std::string screen = normalized(t.screen());
  screen = through_last(screen.substr(screen.find("pytorch python3.13")), "legend:");
  CHECK_MESSAGE(screen == expected("matrix.txt"), screen);

  t.type("clear; NO_COLOR=1 " + ptbuild + " matrix");
  // The new matrix, not the last one still on the screen with the command typed under it (a race
  // a loaded machine lost): once cleared, the typed line is gone.
  REQUIRE(eventually(
      [&] {
        std::string s = t.screen();
        return s.find("legend:") != std::string::npos && s.find("NO_COLOR=1") == std::string::npos;
      },
      std::chrono::seconds(10)));
  CHECK(t.screen(true).find("\x1b[32m") == std::string::npos);
}

TEST_CASE("terminal: status --watch redraws live progress bars and ETAs - log -f ends with the state") {
  Daemon d("max_parallel = 1\n");
  // A finished build of the family gives the never-built variant an expected duration.
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "sleep 1\nmkdir $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "echo '[3/10] Building CXX object aten.o'\nwhile [ ! -e " +
                                                      d.nonce() +
                                                      "/go ]; do sleep 0.05; done\n"
                                                      "echo '[10/10] Linking libtorch.so'\nmkdir $out");
  d.start();
  d.client_json({"queue", "cpu-avx2"});
  d.client({"wait", "cpu-avx2", "--timeout", "60s"});
  d.client_json({"queue", "cpu-avx512"});
  Tmux t("ptbuild-watch");
  if (!t.ok()) {
    MESSAGE("tmux is not available: skipped");
    return;
  }
  std::string ptbuild = build_dir() + "/ptbuild --socket " + d.socket();
  t.type("clear; " + ptbuild + " status --watch");
  REQUIRE(eventually([&] { return t.screen().find("3/10") != std::string::npos; }, std::chrono::seconds(30)));
  std::string live = t.screen();
  CHECK(live.find("builds running: 1 of 1") != std::string::npos);
  CHECK(live.find("[####--------] 30% 3/10") != std::string::npos);
  CHECK(live.find("eta ") != std::string::npos);
  // The whole queue's: when its last build should end, here the one running.
  CHECK(live.find("all done ~") != std::string::npos);
  nlohmann::json status = d.client_json({"status"});
  for (const auto& j : status["jobs"])
    if (j["state"] == "running") CHECK(status["scheduler"]["eta"] == j["eta"]);
  // Redrawn in place: one table on the screen, not one below the other.
  CHECK(live.find("builds running") == live.rfind("builds running"));
  d.dir().write("go", "");
  REQUIRE(eventually([&] { return t.screen().find("builds running: 0 of 1") != std::string::npos; },
                     std::chrono::seconds(30)));
  std::string done = normalized(t.screen());
  done = through_last(done.substr(done.find("builds running")), "pytorch-python313-cpu-avx512");
  CHECK_MESSAGE(done == expected("status-done.txt"), done);

  t.type("clear; " + ptbuild + " log -f cpu-avx512 --tail 1");
  REQUIRE(eventually([&] { return t.screen().find("=== job #2 succeeded") != std::string::npos; },
                     std::chrono::seconds(30)));
}

TEST_CASE("completion: bash completes commands - and variants and job ids from the daemon") {
  Daemon d;
  d.add_recipe("pytorch-python313-cuda13_0-sm90-avx512");
  d.add_recipe("pytorch-python313-cuda13_0-sm120-avx512");
  d.start();
  d.client_json({"pause"});
  d.client_json({"queue", "sm120-avx512"});
  auto complete = [&](const std::string& line_words, int cword) {
    std::string script = "PATH=" + build_dir() + ":$PATH; source " + source_dir() +
                         "/completions/ptbuild.bash; COMP_WORDS=(" + line_words +
                         "); COMP_CWORD=" + std::to_string(cword) +
                         "; _ptbuild; printf '%s\\n' \"${COMPREPLY[@]}\"";
    return run_process({"/bin/bash", "-c", script}).out;
  };
  CHECK(complete("ptbuild qu", 1) == "queue\n");
  std::string variants =
      complete("ptbuild --socket " + d.socket() + " queue pytorch-python313-cuda13_0-sm9", 4);
  CHECK(variants == "pytorch-python313-cuda13_0-sm90-avx512\n");
  std::string jobs = complete("ptbuild --socket " + d.socket() + " cancel ''", 4);
  CHECK(jobs.find("1\n") != std::string::npos);
  CHECK(jobs.find("pytorch-python313-cuda13_0-sm120-avx512") != std::string::npos);
  // Without a daemon completion says nothing rather than an error.
  ProcessResult quiet =
      run_process({build_dir() + "/ptbuild", "_complete", "variants", "--socket", d.dir() / "none.sock"});
  CHECK(quiet.exit_code == 0);
  CHECK(quiet.out.empty());
  CHECK(quiet.err.empty());
}

TEST_CASE("man pages render without warnings") {
  for (const char* page : {"man/ptbuild.1", "man/ptbuildd.8"}) {
    CAPTURE(page);
    ProcessResult r =
        run_process({"/usr/bin/man", "--warnings", "-E", "UTF-8", "-l", source_dir() + "/" + page},
                    {.env = {{"MANPAGER", "cat"}, {"MANWIDTH", "80"}}});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.find("SYNOPSIS") != std::string::npos);
  }
}
