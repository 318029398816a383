#include "core/diagnosis.h"

#include <doctest/doctest.h>

#include <sstream>

#include "tests/support/temp_dir.h"

using namespace ptbuild;

namespace {
const VariantAxes kGpu = parse_variant_name("pytorch-python313-cuda12_8-sm90-avx512");
const VariantAxes kCpu = parse_variant_name("pytorch-python313-cpu-avx2");

std::optional<Failure> scan(const VariantAxes& axes, const std::string& log, int exit_code) {
  LogScanner s(axes);
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) s.feed(line);
  return s.diagnose(exit_code);
}
}  // namespace

TEST_CASE("diagnosis: ANSI colour codes are stripped") {
  CHECK(strip_ansi("\x1b[31;1merror:\x1b[0m hash mismatch") == "error: hash mismatch");
  CHECK(strip_ansi("\x1b]8;;http://x\x07link\x1b]8;;\x07 done\r") == "link done");
}

TEST_CASE("diagnosis: CUDA silently off in a GPU variant fails even a successful build") {
  auto f = scan(kGpu,
                "-- Could NOT find CUDA (missing: CUDA_TOOLKIT_ROOT_DIR CUDA_NVCC_EXECUTABLE)\n"
                "  PyTorch: CUDA cannot be found.\n  Not compiling with CUDA.\n"
                "--   USE_CUDA              : OFF\n",
                0);
  REQUIRE(f);
  CHECK(f->failure_class == "cuda_not_found");
  CHECK(f->hint.find("torch.override { cudaSupport = true; gpuTargets = [ \"90\" ]; }") != std::string::npos);
  CHECK(f->excerpt.find("Could NOT find CUDA") != std::string::npos);
  // The same lines in a CPU variant are normal.
  CHECK_FALSE(
      scan(kCpu, "-- Could NOT find CUDA (missing: CUDA_TOOLKIT_ROOT_DIR)\n--   USE_CUDA : OFF\n", 0));
  CHECK_FALSE(scan(kGpu, "--   USE_CUDA              : ON\n", 0));
}

TEST_CASE("diagnosis: the first real cause wins over the cascade") {
  auto f = scan(kGpu,
                "pytorch> [1/9] nvcc ...\n"
                "pytorch> nvcc fatal   : Unsupported gpu architecture 'compute_120'\n"
                "pytorch> ninja: build stopped: subcommand failed.\n"
                "error: builder for '/nix/store/x-pytorch.drv' failed with exit code 1\n"
                "error: 1 dependencies of derivation '/nix/store/y-env.drv' failed to build\n",
                1);
  REQUIRE(f);
  CHECK(f->failure_class == "unsupported_gpu_arch");
  CHECK(f->message == "nvcc fatal   : Unsupported gpu architecture 'compute_120'");
}

TEST_CASE("diagnosis: other failures fall back to the first error line") {
  auto f = scan(kCpu,
                "pytorch> ../aten/src/ATen/foo.cpp:12:3: error: 'bar' was not declared in this scope\n"
                "error: builder for '/nix/store/x-pytorch.drv' failed with exit code 2\n"
                "error: 1 dependencies of derivation '/nix/store/y.drv' failed to build\n",
                1);
  REQUIRE(f);
  CHECK(f->failure_class == "builder_failed");
  CHECK(f->message == "../aten/src/ATen/foo.cpp:12:3: error: 'bar' was not declared in this scope");
  CHECK(scan(kCpu, "nothing useful\n", 137)->failure_class == "out_of_memory");
  CHECK_FALSE(scan(kCpu, "all good\n", 0));
}

TEST_CASE("diagnosis: every class from the exact messages of CMake - nvcc - GCC - Nix and the kernel") {
  struct Case {
    const char* fixture;
    const char* variant;
    int exit_code;
    const char* failure_class;
    const char* message_part;
  };
  const Case cases[] = {
      {"cuda_not_found.log", "pytorch-python313-cuda12_8-sm90-avx512", 1, "cuda_not_found",
       "Could NOT find CUDA"},
      {"cuda_toolkit_not_found.log", "torchvision-python313-cuda13_0-sm120-avx512", 1, "cuda_not_found",
       "CUDAToolkit"},
      {"unknown_cuda_arch.log", "pytorch-python313-cuda13_0-sm121-armv9", 1, "unknown_cuda_arch",
       "Unknown CUDA Architecture Name 12.1"},
      {"unsupported_gpu_arch.log", "pytorch-python313-cuda12_4-sm120-avx512", 1, "unsupported_gpu_arch",
       "compute_120"},
      {"out_of_memory.log", "pytorch-python313-cpu-avx512", 1, "out_of_memory",
       "Killed signal terminated program cc1plus"},
      {"died_signal_9.log", "pytorch-python313-cpu-avx2", 1, "out_of_memory", "died due to signal 9"},
      {"disk_full.log", "pytorch-python313-cpu-avx2", 1, "disk_full", "No space left on device"},
      {"eval_error.log", "pytorch-python313-cuda13_0-sm110-armv9", 1, "eval_error",
       "attribute 'pytorch' missing"},
      {"eval_undefined.log", "pytorch-python313-cuda13_0-sm90-avx512", 1, "eval_error",
       "undefined variable 'gpuArchSM'"},
      {"network.log", "pytorch-python313-cpu-avx2", 1, "network", "Could not resolve host: github.com"},
      {"network_retries.log", "pytorch-python313-cpu-avx2", 1, "network", "Couldn't resolve host name (6)"},
      {"eval_no_default.log", "pytorch-python313-cuda13_0-sm90-avx512", 1, "eval_error",
       "argument without a value ('lib')"},
      {"builder_failed.log", "pytorch-python313-cpu-avx2", 1, "builder_failed",
       "has no member named 'fmadd'"},
      {"hash_mismatch.log", "pytorch-python313-cpu-avx2", 1, "hash_mismatch",
       "hash mismatch in fixed-output derivation"},
      // The failures of the real repo's build notes (docs/pytorch-2.10-cuda13-build-notes.md).
      {"cuda13_clockrate.log", "pytorch-python313-cuda13_0-sm120-avx512", 2, "version_skew",
       "no member named 'clockRate'"},
      {"torch_version_mismatch.log", "pytorch-python313-cuda13_0-sm90-avx512", 1, "version_skew",
       "TORCH_FEATURE_VERSION >= TORCH_VERSION_2_10_0"},
      {"cccl_headers.log", "pytorch-python313-cuda13_0-sm120-avx512", 1, "version_skew",
       "cccl/cuda/std/utility: No such file"},
      {"install_missing_file.log", "pytorch-python313-cuda13_0-sm100-avx512", 1, "version_skew",
       "file INSTALL cannot find"},
      {"patch_does_not_apply.log", "pytorch-python313-cuda13_0-sm89-avx512", 1, "version_skew",
       "can't find file to patch"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.fixture);
    auto f = scan(
        parse_variant_name(c.variant),
        ptbuild::testing::read_file(std::string(PTBUILD_SOURCE_DIR) + "/tests/fixtures/logs/" + c.fixture),
        c.exit_code);
    REQUIRE(f);
    CHECK(f->failure_class == c.failure_class);
    CHECK(f->message.find(c.message_part) != std::string::npos);
    CHECK_FALSE(f->hint.empty());
    CHECK(f->excerpt.find(c.message_part) != std::string::npos);
    CHECK(f->message.find('\n') == std::string::npos);  // one line
  }
  auto pytorch_attr = scan(
      parse_variant_name("pytorch-python313-cuda13_0-sm110-armv9"),
      ptbuild::testing::read_file(std::string(PTBUILD_SOURCE_DIR) + "/tests/fixtures/logs/eval_error.log"),
      1);
  CHECK(pytorch_attr->hint.find("python3Packages.torch") != std::string::npos);
  // After Nix's retries, the failure is its final error, not the first warning of a retry.
  auto retried = scan(parse_variant_name("pytorch-python313-cpu-avx2"),
                      ptbuild::testing::read_file(std::string(PTBUILD_SOURCE_DIR) +
                                                  "/tests/fixtures/logs/network_retries.log"),
                      1);
  CHECK(retried->message.starts_with("error: unable to download"));
  CHECK(retried->message.find("retrying") == std::string::npos);
  CHECK(retried->hint.find("retries it automatically") == std::string::npos);
}

TEST_CASE("diagnosis: a remote builder that cannot be reached or is lost mid-build is the machine's fault") {
  // Nix 2.8's words, from a real ssh-ng:// build against a stopped sshd and one killed mid-build.
  auto unreachable =
      scan(kCpu,
           "ssh: connect to host 10.77.1.2 port 22: Connection refused\n"
           "cannot build on 'ssh-ng://root@10.77.1.2': error: cannot open connection to remote store "
           "'ssh-ng://root@10.77.1.2': error: unexpected end-of-file\n"
           "Failed to find a machine for remote build!\n"
           "error: unable to start any build; remote machines may not have all required system features.\n",
           1);
  REQUIRE(unreachable);
  CHECK(unreachable->failure_class == "nix_setup");
  CHECK(unreachable->message == "ssh: connect to host 10.77.1.2 port 22: Connection refused");
  CHECK(unreachable->hint.find("cannot be reached") != std::string::npos);
  CHECK(is_machine_fault(*unreachable));
  auto lost = scan(kCpu,
                   "building '/nix/store/2m2c-remote-sleep.drv' on 'ssh-ng://root@10.77.1.2'...\n"
                   "remote-sleep> starting\n"
                   "error: unexpected end-of-file\n"
                   "error: builder for '/nix/store/2m2c-remote-sleep.drv' failed with exit code 1\n",
                   1);
  REQUIRE(lost);
  CHECK(lost->failure_class == "nix_setup");
  CHECK(lost->hint.find("connection to the builder") != std::string::npos);
  // A recipe's own words about the store are prefixed by Nix ("name> "): not the machine's (it
  // was retried forever and took both builders of a fleet down).
  auto setuptools = scan(kCpu,
                         "numpy> error: could not create '/nix/store/abc-numpy-2.1.0/lib/_build': Permission "
                         "denied\nerror: builder for '/nix/store/abc-numpy.drv' failed with exit code 1\n",
                         1);
  REQUIRE(setuptools);
  CHECK(setuptools->failure_class != "nix_setup");
  // Nix's own refusal of a system the builder claims but cannot build: the builder's fault.
  auto liar =
      scan(kCpu,
           "error: a 'aarch64-linux' with features {} is required to build '/nix/store/x-arm.drv', but "
           "I am a 'x86_64-linux' with features {benchmark, big-parallel, nixos-test, uid-range}\n",
           1);
  REQUIRE(liar);
  CHECK(liar->failure_class == "nix_setup");
  CHECK(liar->hint.find("does not build for the system it claims") != std::string::npos);
  // A recipe's own ssh output is prefixed by Nix ("name> "): not a builder fault.
  auto recipe = scan(kCpu, "torch> ssh: Could not resolve hostname github.com\nerror: builder failed\n", 1);
  REQUIRE(recipe);
  CHECK(recipe->failure_class != "nix_setup");
}

TEST_CASE(
    "diagnosis: the real build notes' failures say what to change, and a dependency's failure names it") {
  auto fixture = [](const char* name) {
    return ptbuild::testing::read_file(std::string(PTBUILD_SOURCE_DIR) + "/tests/fixtures/logs/" + name);
  };
  auto magma = scan(kGpu, fixture("cuda13_clockrate.log"), 1);
  REQUIRE(magma);
  CHECK(magma->hint.find("magma.overrideAttrs") != std::string::npos);
  CHECK(magma->message.ends_with("(in magma-2.9.0, a dependency: not torch itself)"));
  CHECK(scan(kGpu, fixture("cccl_headers.log"), 1)->hint.find("cuda_cccl") != std::string::npos);
  CHECK(scan(kGpu, fixture("install_missing_file.log"), 1)->excerpt.find("FindCUDAToolkit.cmake") !=
        std::string::npos);
  CHECK(scan(kGpu, fixture("patch_does_not_apply.log"), 1)->hint.find("patches = [ ]") != std::string::npos);
  // The build's own derivation is not called a dependency.
  VariantAxes sm90 = parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512");
  auto own = scan(sm90, fixture("torch_version_mismatch.log"), 1);
  REQUIRE(own);
  CHECK(own->message.find("dependency") == std::string::npos);
  CHECK(own->hint.find("PYTORCH_BUILD_VERSION") != std::string::npos);
}
