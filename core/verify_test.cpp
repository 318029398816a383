#include "core/verify.h"

#include <doctest/doctest.h>

#include "tests/support/temp_dir.h"

using namespace ptbuild;
using nlohmann::json;

namespace {
json h100() {
  return json::parse(testing::read_file(std::string(PTBUILD_SOURCE_DIR) + "/tests/fixtures/probe/h100.json"));
}
bool mentions(const VerifyResult& r, const std::string& text) {
  for (const auto& p : r.problems)
    if (p.find(text) != std::string::npos) return true;
  return false;
}
const VariantAxes kSm90 = parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512");
}  // namespace

TEST_CASE("verify: the real H100 wheel is a multi-architecture build - not an sm90 variant") {
  VerifyResult r = compare_facts(kSm90, h100());
  CHECK_FALSE(r.ok);
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0] ==
        "expected only sm_90, found also sm_100, sm_120, sm_75, sm_80, sm_86 "
        "(a multi-architecture build, not this variant's)");
  CHECK(r.facts["device_name"] == "NVIDIA H100 80GB HBM3");
}

TEST_CASE("verify: the same facts with only sm_90 are accepted - the GPU run included") {
  json facts = h100();
  facts["arch_flags"] = {"sm_90"};
  VerifyResult r = compare_facts(kSm90, facts);
  CHECK(r.ok);
  CHECK(r.problems.empty());
  CHECK(r.notes.empty());  // a GPU of capability 9.0 was there and the tensor check ran
  facts["arch_flags"] = {"compute_90", "sm_90"};  // its own PTX is its own architecture
  CHECK(compare_facts(kSm90, facts).ok);
  facts["tensor_ok"] = false;
  facts["tensor_error"] = "RuntimeError: no kernel image is available for execution on the device";
  CHECK(mentions(compare_facts(kSm90, facts), "no kernel image"));
}

TEST_CASE("verify: wrong CUDA version, CUDA off, wrong architecture, CUDA in a CPU variant") {
  json facts = h100();
  facts["arch_flags"] = {"sm_90"};
  CHECK(mentions(compare_facts(parse_variant_name("pytorch-python313-cuda12_8-sm90-avx512"), facts),
                 "expected CUDA 12.8, found CUDA 13.0"));
  CHECK(mentions(compare_facts(parse_variant_name("pytorch-python313-cuda13_0-sm120-avx512"), facts),
                 "expected architecture sm_120, found sm_90"));
  VerifyResult cpu = compare_facts(parse_variant_name("pytorch-python313-cpu-avx2"), facts);
  CHECK(mentions(cpu, "expected a CPU-only torch, found CUDA 13.0"));
  CHECK(mentions(cpu, "expected no GPU architectures, found sm_90"));

  json off{{"torch_version", "2.10.0"},
           {"cuda_version", nullptr},
           {"arch_flags", json::array()},
           {"cuda_available", false}};
  VerifyResult r = compare_facts(kSm90, off);
  CHECK(mentions(r, "expected CUDA 13.0, found a CPU-only torch"));
  CHECK(compare_facts(parse_variant_name("pytorch-python313-cpu-avx2"), off).ok);
}

TEST_CASE("verify: without a GPU of its capability the compiled architectures still decide") {
  json facts{{"torch_version", "2.10.0"},
             {"cuda_version", "13.0"},
             {"arch_flags", {"sm_90"}},
             {"cuda_available", false}};
  VerifyResult r = compare_facts(kSm90, facts);
  CHECK(r.ok);
  REQUIRE(r.notes.size() == 1);
  CHECK(r.notes[0].find("no usable GPU") != std::string::npos);
  facts["cuda_available"] = true;
  facts["device_capability"] = "8.6";
  r = compare_facts(kSm90, facts);
  CHECK(r.ok);
  CHECK(r.notes[0].find("capability 8.6, not 9.0") != std::string::npos);
}

TEST_CASE("verify: a probe that could not import torch, and finding the JSON in its output") {
  CHECK(mentions(
      compare_facts(kSm90, {{"error", "cannot import torch: ModuleNotFoundError: No module named 'torch'"}}),
      "No module named 'torch'"));
  auto facts = probe_facts("/nix/store/x/python: warning: something\n{\"cuda_version\": null}\n");
  REQUIRE(facts);
  CHECK((*facts)["cuda_version"].is_null());
  CHECK_FALSE(probe_facts("Traceback (most recent call last):\n  ...\nSegmentation fault\n"));
}

TEST_CASE("verify: on a GPU builder CUDA must work on a GPU of the variant's capability") {
  VariantAxes sm90 = parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512");
  nlohmann::json facts = {{"torch_version", "2.10.0"},
                          {"cuda_version", "13.0"},
                          {"arch_flags", {"sm_90"}},
                          {"cuda_available", false},
                          {"cuda_error", "no CUDA-capable device is detected"}};
  CHECK(compare_facts(sm90, facts).ok);  // here: only the compiled facts could be checked
  VerifyResult there = compare_facts(sm90, facts, "gpu1");
  CHECK_FALSE(there.ok);
  CHECK(there.problems.at(0) ==
        "expected CUDA to work on builder gpu1 (it has gpu-sm90), found "
        "torch.cuda.is_available() false: no CUDA-capable device is detected");
  facts["cuda_available"] = true;
  facts["device_capability"] = "8.6";
  CHECK(compare_facts(sm90, facts, "gpu1").problems.at(0) ==
        "expected a GPU of capability 9.0 on builder gpu1 (it has gpu-sm90), found capability 8.6");
  facts["device_capability"] = "9.0";
  facts["tensor_ok"] = true;
  VerifyResult good = compare_facts(sm90, facts, "gpu1");
  CHECK(good.ok);
  CHECK(good.notes.back() == "ran on builder gpu1's GPU");
}
