// The dashboard as a user sees it: a real daemon running real Nix builds, shown in a real
// headless Chromium driven over the DevTools protocol. Screenshots are kept under docs/.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "tests/support/harness.h"
#include "tests/support/web_client.h"

using namespace ptbuild::testing;
using nlohmann::json;

namespace {

std::string gate(const Daemon& d, const std::string& name) {
  return "while [ ! -e " + d.nonce() + "/" + name + " ]; do sleep 0.05; done\n";
}

// Where the screenshots go: docs/screenshots in the source tree, so a person looks at them.
std::string shot(const std::string& name) {
  std::string dir = source_dir() + "/docs/screenshots";
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

}  // namespace

TEST_CASE(
    "dashboard: in Chromium the matrix, live progress, a failure's hint and a hash repair show without reloads") {
  if (!Browser::available()) {
    MESSAGE("skipped: Debian's chromium is not installed (scripts/setup.sh installs it)");
    return;
  }
  Daemon d("max_parallel = 3", "\n[web]\nlisten = \"127.0.0.1:0\"\n");
  d.add_fake_hash_recipe("pytorch-python313-cuda13_0-sm90-avx512");
  d.add_sh_recipe(
      "pytorch-python313-cuda13_0-sm86-avx2",
      "echo '-- USE_CUDA : OFF'\necho 'CMake Error: Could NOT find CUDA (missing: CUDA_NVCC_EXECUTABLE)'\n"
      "exit 1");
  d.add_sh_recipe("pytorch-python313-cuda13_0-sm120-avx512", "mkdir -p $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx2", "echo '[1/40] Building CXX object a.o'\n" + gate(d, "half") +
                                                    "echo '[20/40] Building CXX object b.o'\n" +
                                                    gate(d, "done") +
                                                    "echo '[40/40] Linking'\nmkdir -p $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512", "mkdir -p $out");
  d.commit_recipes();
  d.start();
  uint16_t port = 0;
  REQUIRE(eventually([&] { return (port = dashboard_port(d.log())) != 0; }));
  std::string base = "http://127.0.0.1:" + std::to_string(port) + "/";

  d.client_json({"queue", "sm90-avx512", "sm86-avx2", "cpu-avx2"});
  REQUIRE(d.client({"wait", "sm90-avx512", "sm86-avx2"}).exit_code != 0);  // sm86 fails

  Browser browser;
  browser.go(base);
  auto state_of = [&](const std::string& variant) {
    return browser.eval("(document.querySelector('.cell[data-variant=\"" + variant +
                        "\"]') || {}).dataset?.state || ''");
  };
  REQUIRE(eventually([&] { return state_of("pytorch-python313-cuda13_0-sm90-avx512") == "succeeded"; }));
  CHECK(state_of("pytorch-python313-cuda13_0-sm86-avx2") == "failed");
  CHECK(state_of("pytorch-python313-cuda13_0-sm120-avx512") == "none");
  CHECK(state_of("pytorch-python313-cpu-avx2") == "running");
  CHECK(
      browser.eval("[...document.querySelectorAll('section.matrix h2')].map(e => e.textContent).join('|')") ==
      "CPU · 2 variants|CUDA 13.0 · 3 variants");

  // The running build's progress moves while the page stays the same page.
  browser.eval("window.__sameDocument = true");
  auto done = [&] {
    return browser.eval(
        "(document.querySelector('#active tr[data-job] .progress') || {}).dataset?.done || ''");
  };
  REQUIRE(eventually([&] { return done() == "1"; }));
  browser.screenshot(shot("matrix.png"));
  std::ofstream(d.nonce() + "/half") << "";
  CHECK(eventually([&] { return done() == "20"; }));
  CHECK(browser.eval("window.__sameDocument === true") == true);

  // A job queued meanwhile appears by itself (the watch stream), with why it waits or runs.
  d.client_json({"queue", "cpu-avx512"});
  CHECK(eventually([&] { return state_of("pytorch-python313-cpu-avx512") != "none"; }));
  std::ofstream(d.nonce() + "/done") << "";
  CHECK(eventually([&] { return state_of("pytorch-python313-cpu-avx2") == "succeeded"; }));
  CHECK(browser.eval("window.__sameDocument === true") == true);

  // The failed job: class, message and the hint that says what to do.
  int64_t failed = d.job("sm86-avx2")["id"];
  browser.go(base + "#/job/" + std::to_string(failed));
  REQUIRE(eventually([&] { return browser.eval("!!document.querySelector('#job-failure .hint')") == true; }));
  CHECK(browser.eval("document.querySelector('#job-failure .class').textContent") == "cuda_not_found");
  std::string hint = browser.eval("document.querySelector('#job-failure .hint').textContent");
  CHECK(hint == d.job("sm86-avx2")["failure"]["hint"]);
  CHECK(eventually([&] {
    return browser.eval("document.querySelector('#job-log').textContent")
               .get<std::string>()
               .find("USE_CUDA : OFF") != std::string::npos;
  }));
  browser.screenshot(shot("job-failed.png"));

  // The repaired job: file:line and old -> new, as `ptbuild fixes` has them.
  json fix = d.client_json({"fixes"})["fixes"][0];
  browser.go(base + "#/job/" + std::to_string(fix["job"].get<int64_t>()));
  REQUIRE(eventually([&] { return browser.eval("!!document.querySelector('#job-fixes li')") == true; }));
  std::string line = browser.eval("document.querySelector('#job-fixes li').textContent");
  CHECK(line.find(fix["file"].get<std::string>() + ":" + std::to_string(fix["line"].get<int>())) !=
        std::string::npos);
  CHECK(line.find(fix["old"].get<std::string>() + " → " + fix["new"].get<std::string>()) !=
        std::string::npos);
  browser.screenshot(shot("job-repaired.png"));

  // Dark mode and a phone's width: the same page, readable.
  browser.set_dark(true);
  browser.go(base);
  REQUIRE(eventually([&] { return state_of("pytorch-python313-cpu-avx2") == "succeeded"; }));
  CHECK(browser.eval("getComputedStyle(document.body).backgroundColor") == "rgb(19, 21, 23)");
  browser.screenshot(shot("matrix-dark.png"));
  Browser phone(390, 844);
  phone.go(base);
  REQUIRE(
      eventually([&] { return phone.eval("document.querySelectorAll('.cell[data-variant]').length") == 5; }));
  CHECK(phone.eval("document.documentElement.scrollWidth <= window.innerWidth + 1") ==
        true);  // no sideways page
  phone.screenshot(shot("matrix-phone.png"));
}

TEST_CASE("dashboard: a job page shows what verification found, and a wrong artifact's problem") {
  if (!Browser::available()) {
    MESSAGE("skipped: Debian's chromium is not installed (scripts/setup.sh installs it)");
    return;
  }
  Daemon d("", "\n[verify]\nenabled = true\n\n[web]\nlisten = \"127.0.0.1:0\"\n");
  // Artifacts whose bin/python3 answers the probe as a torch build would.
  auto torch = [](const std::string& cuda) {
    return "mkdir -p $out/bin\ncat > $out/bin/python3 <<'PY'\n#!/bin/sh\necho '{\"torch_version\": \"2.10.0\", "
           "\"cuda_version\": " +
           cuda + ", \"arch_flags\": [], \"cuda_available\": false}'\nPY\nchmod +x $out/bin/python3";
  };
  d.add_sh_recipe("pytorch-python313-cpu-avx512", torch("null"));
  d.add_sh_recipe("pytorch-python313-cpu-avx2", torch("\"13.0\""));  // a CPU variant that is not
  d.start();
  uint16_t port = 0;
  REQUIRE(eventually([&] { return (port = dashboard_port(d.log())) != 0; }));
  d.client_json({"queue", "cpu-avx512", "cpu-avx2"});
  d.client({"wait", "cpu-avx512", "cpu-avx2"});
  std::string base = "http://127.0.0.1:" + std::to_string(port) + "/#/job/";

  Browser browser;
  browser.go(base + std::to_string(d.job("cpu-avx512")["id"].get<int64_t>()));
  REQUIRE(eventually([&] { return browser.eval("!!document.querySelector('#job-verify dl')") == true; }));
  std::string facts = browser.eval("document.querySelector('#job-verify').textContent");
  CHECK(facts.find("torch_version") != std::string::npos);
  CHECK(facts.find("2.10.0") != std::string::npos);
  CHECK(browser.eval("document.querySelector('#job-verify .badge').textContent") == "succeeded");

  json wrong = d.job("cpu-avx2");
  REQUIRE(wrong["verify"]["problems"].size() == 1);
  browser.go(base + std::to_string(wrong["id"].get<int64_t>()));
  REQUIRE(
      eventually([&] { return browser.eval("!!document.querySelector('#job-verify .problem')") == true; }));
  CHECK(browser.eval("document.querySelector('#job-verify .problem').textContent") ==
        wrong["verify"]["problems"][0]);
  CHECK(browser.eval("document.querySelector('#job-verify .badge').textContent") == "failed");
  browser.screenshot(shot("job-verify-failed.png"));
}

TEST_CASE(
    "dashboard: memory and disk bars with the builds that hold them, the fleet's day and a variant's history") {
  if (!Browser::available()) {
    MESSAGE("skipped: Debian's chromium is not installed (scripts/setup.sh installs it)");
    return;
  }
  Daemon d(
      "",
      "\n[[builder]]\nname = \"local\"\nuri = \"local\"\nmax_jobs = 4\nmemory = \"4GiB\"\n"
      "reserve = \"512MiB\"\n\n[resources]\ndefault_memory = \"600MiB\"\n\n[web]\nlisten = \"127.0.0.1:0\"\n");
  const std::string variant = "pytorch-python313-cpu-avx2";
  std::vector<int64_t> built;
  d.add_sh_recipe(variant, "mkdir -p $out");
  // Two that hold 30 MiB of their build directories while they wait.
  const std::string hold_disk = "dd if=/dev/zero of=big bs=1M count=30 2>/dev/null\n";
  d.add_sh_recipe("pytorch-python313-cpu-avx512", hold_disk + gate(d, "go") + "mkdir -p $out");
  d.add_sh_recipe("pytorch-python313-cpu-avx512bf16", hold_disk + gate(d, "go") + "mkdir -p $out");
  d.start();
  uint16_t port = 0;
  REQUIRE(eventually([&] { return (port = dashboard_port(d.log())) != 0; }));
  std::string base = "http://127.0.0.1:" + std::to_string(port) + "/";
  // Three builds of one variant, each using a little more memory and time.
  for (int i = 1; i <= 3; ++i) {
    d.add_sh_recipe(variant, "dd if=/dev/zero of=/dev/null bs=" + std::to_string(40 * i) +
                                 "M count=1\nsleep " + std::to_string(i) + "\nmkdir -p $out\necho " +
                                 std::to_string(i) + " > $out/n");
    d.client_json({"queue", "cpu-avx2"});
    REQUIRE(d.client({"wait", "cpu-avx2", "--timeout", "2m"}).exit_code == 0);
    built.push_back(d.job("cpu-avx2")["id"]);
  }
  // Two builds that hold their expected memory while they wait at the gate.
  d.client_json({"queue", "cpu-avx512", "cpu-avx512bf16"});
  REQUIRE(eventually([&] {
    return d.job("cpu-avx512")["state"] == "running" && d.job("cpu-avx512bf16")["state"] == "running";
  }));

  // The history the job page draws: that variant's jobs only (the client asks the same).
  json history = d.client_json({"jobs", "--variant", variant});
  REQUIRE(history["jobs"].size() == 3);
  CHECK(history["jobs"][0]["id"] == built.back());
  CHECK(d.client({"jobs", "--variant", "no-such-variant"}).out.find("cpu-avx2") == std::string::npos);

  Browser browser;
  browser.go(base + "#/builders");
  const std::string memory =
      "document.querySelector('tr[data-builder=\"local\"] [data-resource=\"memory\"]')";
  REQUIRE(eventually([&] {
    return browser.eval("!!" + memory + " && " + memory + ".querySelectorAll('.seg.held').length") == 2;
  }));
  std::string held =
      browser.eval("[..." + memory + ".querySelectorAll('.seg.held')].map(e => e.title).join('|')");
  CHECK_MESSAGE(held.find("#" + std::to_string(d.job("cpu-avx512")["id"].get<int64_t>()) + " holds") !=
                    std::string::npos,
                held);
  CHECK(browser.eval(memory + ".querySelector('.bar-text').textContent.includes('of 4.0 GiB')") == true);
  const std::string disk = "document.querySelector('tr[data-builder=\"local\"] [data-resource=\"disk\"]')";
  CHECK(browser.eval("!!" + disk + ".querySelector('.marker')") == true);
  // The disk bar: each build's directory as it is walked (every 5 s at most), where the build
  // directories are on the store's file system (this machine's /tmp and /nix are).
  json local = d.client_json({"builders"})["builders"][0]["resources"];
  if (std::llabs(local["store_free"].get<int64_t>() - local["build_dir_free"].get<int64_t>()) <
      local["store_size"].get<int64_t>() / 100) {
    CHECK_MESSAGE(
        eventually([&] { return browser.eval(disk + ".querySelectorAll('.seg.held').length") == 2; }),
        d.client({"builders", "--json"}).out);
    CHECK(browser.eval(
              "[..." + disk +
              ".querySelectorAll('.seg.held')].every(e => /build directory takes 3\\d MiB/.test(e.title))") ==
          true);
  } else {
    MESSAGE("the build directory is on another file system than the store: no build on the disk bar");
  }
  // The timeline has a bar for each build that ran today, the running ones as running.
  CHECK(browser.eval("document.querySelectorAll('#timeline rect[data-job]').length") == 5);
  CHECK(browser.eval("document.querySelectorAll('#timeline rect.state-running').length") == 2);
  browser.screenshot(shot("builders.png"));

  // The third build's page: its variant's three builds as bars, longer and bigger each time.
  browser.go(base + "#/job/" + std::to_string(built.back()));
  REQUIRE(eventually(
      [&] { return browser.eval("document.querySelectorAll('#job-history .hist-bar.dur').length") == 3; }));
  CHECK(browser.eval("document.querySelectorAll('#job-history .hist-bar.mem').length") == 3);
  CHECK(browser.eval("document.querySelector('#job-history .hist-bar.current').dataset.job") ==
        std::to_string(built.back()));
  // Oldest first, so the bars grow left to right (1, 2 and 3 s; 40, 80 and 120 MiB and more).
  CHECK(browser.eval("(() => { const h = [...document.querySelectorAll('#job-history .hist-bar.dur')]"
                     ".map(e => +e.getAttribute('height')); return h[0] < h[2]; })()") == true);
  CHECK(browser.eval("(() => { const h = [...document.querySelectorAll('#job-history .hist-bar.mem')]"
                     ".map(e => +e.getAttribute('height')); return h[0] < h[2]; })()") == true);
  browser.screenshot(shot("job-history.png"));
  std::ofstream(d.nonce() + "/go") << "";
  REQUIRE(d.client({"wait", "all", "--timeout", "2m"}).exit_code == 0);
}
