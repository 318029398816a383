#include "core/build_verdict.h"

#include <doctest/doctest.h>

#include "core/diagnosis.h"

using namespace ptbuild;
using namespace std::chrono_literals;
using Kind = Verdict::Kind;

TEST_CASE("verdict: a clean exit succeeds only with a result, a machine fault is never the recipe's") {
  CHECK(decide_build_end({nullptr, true}).kind == Kind::succeeded);
  CHECK(decide_build_end({nullptr, false}).kind == Kind::failed);
  Failure setup{failure_class::kNixSetup, "cannot build on 'ssh-ng://b1'", "", ""};
  Failure full{failure_class::kDiskFull, "No space left on device", "", ""};
  CHECK(decide_build_end({&setup}).kind == Kind::builder_fault);
  CHECK(decide_build_end({&full}).kind == Kind::builder_fault);
  Failure cuda{failure_class::kCudaNotFound, "CUDA is off", "", ""};
  CHECK(decide_build_end({&cuda}).kind == Kind::failed);
}

TEST_CASE("verdict: a hash mismatch is repaired unless hashfix may not") {
  Failure hash{failure_class::kHashMismatch, "hash mismatch in fixed-output derivation", "", ""};
  CHECK(decide_build_end({&hash, false, true}).kind == Kind::repair_hash);
  CHECK(decide_build_end({&hash, false, false}).kind == Kind::failed);
}

TEST_CASE("verdict: a network failure backs off 1x 2x 4x while retries are left, then says they are spent") {
  Failure net{failure_class::kNetwork, "unable to download", "", ""};
  BuildEnd e{&net, false, false, 0, 3, 60s, 17};
  for (int n = 0; n < 3; ++n) {
    e.network_retries = n;
    Verdict v = decide_build_end(e);
    CHECK(v.kind == Kind::retry);
    CHECK(v.wait == Millis(60s) * (1 << n));
  }
  e.network_retries = 3;
  Verdict spent = decide_build_end(e);
  CHECK(spent.kind == Kind::failed);
  CHECK(spent.hint ==
        "the download failed again after 3 retries (daemon.retries): check the network, a proxy or "
        "the URL, then `ptbuild retry 17`");
  e.max_retries = 0;
  e.network_retries = 0;
  CHECK(decide_build_end(e).hint.starts_with("the download failed and retries are off (daemon.retries = 0)"));
}

TEST_CASE("verdict: a machine failure that follows the job from builder to builder is the recipe's") {
  Failure setup{failure_class::kNixSetup, "could not create '/nix/store/x': Permission denied", "", ""};
  BuildEnd first{&setup, false, false, 0, 0, 0s, 9, "a", {}};
  CHECK(decide_build_end(first).kind == Kind::builder_fault);
  BuildEnd second_here{&setup, false, false, 0, 0, 0s, 9, "a", {"a"}};
  CHECK(decide_build_end(second_here).kind == Kind::builder_fault);  // the same machine may be broken
  // Two builders went down within 27 s for one recipe before: the second one is never blamed.
  BuildEnd elsewhere{&setup, false, false, 0, 0, 0s, 9, "b", {"a"}};
  Verdict v = decide_build_end(elsewhere);
  CHECK(v.kind == Kind::failed);
  CHECK(v.hint.find("on a, b") != std::string::npos);
  CHECK(v.hint.find("ptbuild retry 9") != std::string::npos);
  BuildEnd third_here{&setup, false, false, 0, 0, 0s, 9, "a", {"a", "a"}};
  CHECK(decide_build_end(third_here).kind == Kind::failed);  // a bounded number of tries on one
  // What no recipe can cause is never counted against the job.
  Failure liar{failure_class::kNixSetup,
               "error: a 'aarch64-linux' with features {} is required to build "
               "'/nix/store/x.drv', but I am a 'x86_64-linux' with features {}",
               "", ""};
  CHECK(decide_build_end({&liar, false, false, 0, 0, 0s, 9, "b", {"a", "b"}}).kind == Kind::builder_fault);
}
