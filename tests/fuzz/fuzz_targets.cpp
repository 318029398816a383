// Variant names and targets: any recipe name, any target a user types.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/target.h"
#include "core/variant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t split = input.find('\n');
  std::string name = input.substr(0, split);
  std::string target = split == std::string::npos ? name : input.substr(split + 1);
  ptbuild::VariantAxes axes = ptbuild::parse_variant_name(name);
  (void)ptbuild::axes_key(axes);
  (void)axes.torch_arch_flag();
  std::vector<ptbuild::CatalogEntry> catalog{
      {name, "repo", axes},
      {"pytorch-python313-cuda13_0-sm90-avx512", "repo",
       ptbuild::parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512")}};
  (void)ptbuild::resolve_targets({target}, catalog, {});
  (void)ptbuild::glob_match(target, name);
  return 0;
}
