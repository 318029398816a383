#include "core/variant.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
struct Case {
  const char* name;
  const char* family;
  const char* python;
  const char* cuda;
  const char* gpu_arch;
  const char* isa;
  const char* extra;
  const char* platform;
};

void check(const Case& c) {
  CAPTURE(c.name);
  VariantAxes a = parse_variant_name(c.name);
  auto same = [](const std::optional<std::string>& got, const char* want) {
    return want ? got == std::string(want) : !got.has_value();
  };
  CHECK(same(a.family, c.family));
  CHECK(same(a.python, c.python));
  CHECK(same(a.cuda, c.cuda));
  CHECK(same(a.gpu_arch, c.gpu_arch));
  CHECK(same(a.isa, c.isa));
  CHECK(same(a.extra, c.extra));
  CHECK(same(a.platform, c.platform));
}
}  // namespace

TEST_CASE("variant names from the field parse into their axes") {
  const Case cases[] = {
      {"pytorch-python313-cuda13_0-sm90-avx512", "pytorch", "3.13", "13_0", "sm90", "avx512", nullptr,
       "x86_64-linux"},
      {"torchvision-python311-cuda12_8-sm61-avx", "torchvision", "3.11", "12_8", "sm61", "avx", nullptr,
       "x86_64-linux"},
      {"pytorch-python313-darwin-mps", "pytorch", "3.13", nullptr, nullptr, nullptr, nullptr, "darwin"},
      {"pytorch-python313-cpu-armv8_2", "pytorch", "3.13", nullptr, nullptr, "armv8_2", nullptr,
       "aarch64-linux"},
      {"pytorch-python313-cpu-avx512vnni", "pytorch", "3.13", nullptr, nullptr, "avx512vnni", nullptr,
       "x86_64-linux"},
      {"pytorch-python313-cuda12_8-sm120-avx512-cu128", "pytorch", "3.13", "12_8", "sm120", "avx512", "cu128",
       "x86_64-linux"},
      {"pytorch-python313-cuda12_8-sm120-armv8.2-cu128", "pytorch", "3.13", "12_8", "sm120", "armv8.2",
       "cu128", "aarch64-linux"},
      {"pytorch-python313-cuda13_0-sm121-armv9-nightly", "pytorch", "3.13", "13_0", "sm121", "armv9",
       "nightly", "aarch64-linux"},
      {"pytorch-python313-cuda13_0-sm121-armv9-nightly-wrapper", "pytorch", "3.13", "13_0", "sm121", "armv9",
       "nightly-wrapper", "aarch64-linux"},
      {"pytorch-python313-cuda13_0-sm120-avx512-magma", "pytorch", "3.13", "13_0", "sm120", "avx512", "magma",
       "x86_64-linux"},
      {"pytorch-python313-cuda13_0-sm110-armv8_2", "pytorch", "3.13", "13_0", "sm110", "armv8_2", nullptr,
       "aarch64-linux"},
      {"torchaudio-python313-cuda13_0-sm103-avx512bf16", "torchaudio", "3.13", "13_0", "sm103", "avx512bf16",
       nullptr, "x86_64-linux"},
      {"pytorch-python39-cuda11_8-sm86-avx2", "pytorch", "3.9", "11_8", "sm86", "avx2", nullptr,
       "x86_64-linux"},
      {"pytorch-python313-cuda12_9-sm90a-avx512", "pytorch", "3.13", "12_9", "sm90a", "avx512", nullptr,
       "x86_64-linux"},
      {"libtorch-cxx11-python312-cpu-avx2", "libtorch-cxx11", "3.12", nullptr, nullptr, "avx2", nullptr,
       "x86_64-linux"},
      {"pytorch-python313-darwin-mps-nightly", "pytorch", "3.13", nullptr, nullptr, nullptr, "nightly",
       "darwin"},
  };
  for (const Case& c : cases) check(c);
}

TEST_CASE("names that follow no pattern are variants with unknown axes") {
  for (const char* name :
       {"cudatoolkit-13_0", "hello", "python313", "pytorch-python313", "pytorch-python313-rocm6_2-gfx942",
        "nested.pkg", "", "pytorch-python313-cuda13_0-avx512", "-python313-cpu-avx2"}) {
    CAPTURE(name);
    VariantAxes a = parse_variant_name(name);
    CHECK_FALSE(a.known());
    CHECK_FALSE(a.python);
    CHECK_FALSE(a.cuda);
    CHECK_FALSE(a.isa);
  }
}

TEST_CASE("a variant tells the spellings torch reports") {
  VariantAxes a = parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512");
  CHECK(a.is_gpu());
  CHECK(a.torch_arch_flag() == "sm_90");
  CHECK(a.cuda_dotted() == "13.0");
  VariantAxes cpu = parse_variant_name("pytorch-python313-cpu-avx2");
  CHECK_FALSE(cpu.is_gpu());
  CHECK_FALSE(cpu.torch_arch_flag());
}

TEST_CASE("ISA tokens") {
  for (const char* t : {"avx", "avx2", "avx512", "avx512bf16", "avx512vnni", "armv8_2", "armv9", "armv8.2"})
    CHECK(is_isa_token(t));
  for (const char* t : {"cu128", "magma", "nightly", "arm", "armvX", "", "avx-512"})
    CHECK_FALSE(is_isa_token(t));
}
