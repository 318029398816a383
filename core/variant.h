// Variant names and their axes (docs/concepts.md).
//
// A recipe's name carries the whole build matrix position:
//   <family>-python<NNN>-<accel>-<isa>[-<extra>]
// where <accel> is cuda<MAJ>_<MIN>-sm<NN>, cpu, or darwin-mps (then no <isa>).
// Names that do not follow the pattern are still variants; their axes are unknown.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ptbuild {

struct VariantAxes {
  std::optional<std::string> family;    // "pytorch", "torchvision", ...
  std::optional<std::string> python;    // "3.13"
  std::optional<std::string> cuda;      // "13_0"; absent for cpu and darwin variants
  std::optional<std::string> gpu_arch;  // "sm90"
  std::optional<std::string> isa;       // "avx512", "armv8_2"
  std::optional<std::string> extra;     // "cu128", "nightly-wrapper"
  std::optional<std::string> platform;  // "x86_64-linux", "aarch64-linux", "darwin"

  bool known() const { return family.has_value(); }
  bool is_gpu() const { return gpu_arch.has_value(); }
  // "sm90" -> "sm_90", the spelling torch._C._cuda_getArchFlags() reports.
  std::optional<std::string> torch_arch_flag() const;
  // "13_0" -> "13.0", the spelling torch.version.cuda reports.
  std::optional<std::string> cuda_dotted() const;
};

VariantAxes parse_variant_name(std::string_view name);

// The axes without the family: the same key in the pytorch and the torchvision repo means "the
// same build target", which is what a repo's `after` waits for.
std::string axes_key(const VariantAxes& axes);

// "armv9" -> "aarch64-linux", "avx2" -> "x86_64-linux".
std::string platform_of_isa(std::string_view isa);

// True for the instruction-set tokens seen in the field (avx, avx2, avx512*, armv8_2, armv9, ...).
bool is_isa_token(std::string_view token);

}  // namespace ptbuild
