#include "core/diagnosis.h"

#include <doctest/doctest.h>

#include <sstream>

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
  CHECK_FALSE(scan(kCpu, "-- Could NOT find CUDA (missing: CUDA_TOOLKIT_ROOT_DIR)\n--   USE_CUDA : OFF\n", 0));
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
