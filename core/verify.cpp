#include "core/verify.h"

#include <sstream>

namespace ptbuild {

using nlohmann::json;

json VerifyResult::to_json() const {
  return {{"ok", ok}, {"facts", facts}, {"problems", problems}, {"notes", notes}};
}

namespace {

std::string list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out.empty() ? "none" : out;
}

// "sm_90" and "compute_90" (its PTX) are the architecture sm90; "sm_90a" is sm90a.
std::string arch_of_flag(const std::string& flag) {
  size_t us = flag.find('_');
  return us == std::string::npos ? flag : "sm" + flag.substr(us + 1);
}

}  // namespace

std::optional<json> probe_facts(std::string_view output) {
  std::optional<json> found;
  std::istringstream in{std::string(output)};
  for (std::string line; std::getline(in, line);) {
    size_t start = line.find('{');
    if (start == std::string::npos) continue;
    json j = json::parse(line.substr(start), nullptr, false);
    if (j.is_object()) found = std::move(j);
  }
  return found;
}

VerifyResult compare_facts(const VariantAxes& axes, const json& facts, const std::string& gpu_builder) {
  VerifyResult r;
  r.facts = facts;
  if (facts.contains("error")) {
    r.problems.push_back("the probe failed: " + facts["error"].get<std::string>());
    return r;
  }
  std::string cuda =
      facts.value("cuda_version", json()).is_string() ? facts["cuda_version"].get<std::string>() : "";
  std::vector<std::string> flags;
  if (facts.contains("arch_flags") && facts["arch_flags"].is_array())
    for (const json& f : facts["arch_flags"])
      if (f.is_string()) flags.push_back(f.get<std::string>());

  if (axes.is_gpu()) {
    std::string want_cuda = *axes.cuda_dotted();
    if (cuda.empty())
      r.problems.push_back("expected CUDA " + want_cuda +
                           ", found a CPU-only torch (torch.version.cuda is None)");
    else if (cuda != want_cuda && !cuda.starts_with(want_cuda + "."))
      r.problems.push_back("expected CUDA " + want_cuda + ", found CUDA " + cuda);
    std::vector<std::string> foreign;
    bool own = false;
    for (const std::string& f : flags) {
      if (arch_of_flag(f) == *axes.gpu_arch)
        own = true;
      else
        foreign.push_back(f);
    }
    std::string want_flag = *axes.torch_arch_flag();
    if (!cuda.empty() && !own)
      r.problems.push_back("expected architecture " + want_flag + ", found " + list(flags));
    else if (!foreign.empty())
      r.problems.push_back("expected only " + want_flag + ", found also " + list(foreign) +
                           " (a multi-architecture build, not this variant's)");
    if (facts.value("cuda_available", false)) {
      std::string cap = facts.value("device_capability", "");
      std::string want_cap = std::to_string(std::stoi(axes.gpu_arch->substr(2)) / 10) + "." +
                             std::to_string(std::stoi(axes.gpu_arch->substr(2)) % 10);
      if (cap == want_cap) {
        if (!facts.value("tensor_ok", false))
          r.problems.push_back("expected a working tensor operation on the " +
                               facts.value("device_name", "GPU") +
                               ", found: " + facts.value("tensor_error", std::string("a wrong result")));
      } else if (!gpu_builder.empty()) {
        r.problems.push_back("expected a GPU of capability " + want_cap + " on builder " + gpu_builder +
                             " (it has gpu-" + *axes.gpu_arch + "), found capability " + cap);
      } else {
        r.notes.push_back("the GPU here has capability " + cap + ", not " + want_cap +
                          ": the run on a GPU of this variant was not checked");
      }
      if (!gpu_builder.empty()) r.notes.push_back("ran on builder " + gpu_builder + "'s GPU");
    } else if (!gpu_builder.empty()) {
      r.problems.push_back("expected CUDA to work on builder " + gpu_builder + " (it has gpu-" +
                           *axes.gpu_arch + "), found torch.cuda.is_available() false: " +
                           facts.value("cuda_error", std::string("no error given")));
    } else {
      r.notes.push_back("no usable GPU here: checked the compiled architectures only");
    }
  } else if (axes.known()) {
    if (!cuda.empty()) r.problems.push_back("expected a CPU-only torch, found CUDA " + cuda);
    if (!flags.empty()) r.problems.push_back("expected no GPU architectures, found " + list(flags));
  }
  r.ok = r.problems.empty();
  return r;
}

}  // namespace ptbuild
