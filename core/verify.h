// Does the artifact match its name (docs/verification.md)? Compares the probe's facts with the variant's
// axes.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/variant.h"

namespace ptbuild {

struct VerifyResult {
  bool ok = false;
  nlohmann::json facts;               // what the probe reported
  std::vector<std::string> problems;  // each "expected …, found …"
  std::vector<std::string> notes;     // checks that could not be made here, and why
  nlohmann::json to_json() const;     // {ok, facts, problems, notes}
};

// A GPU variant must have CUDA of its version and exactly its own architecture (sm90 => sm_90,
// or its PTX compute_90, and no other); a CPU variant must have no CUDA. When a GPU of the
// variant's capability is present, CUDA must be available and a small tensor operation on it
// must give the right answer. `gpu_builder` names the builder whose GPU of the variant's
// architecture ran the probe (docs/fleet.md): there CUDA must work on that GPU; "" for this machine.
VerifyResult compare_facts(const VariantAxes& axes, const nlohmann::json& facts,
                           const std::string& gpu_builder = "");

// The probe's output: the last line that is a JSON object.
std::optional<nlohmann::json> probe_facts(std::string_view output);

}  // namespace ptbuild
