// The recipe matrix as data (config [repo.matrix]): which variants a repo should have, and the
// recipe text each gets from its kind's template. Pure: reading and writing files is the
// client's job (`ptbuild recipes plan|render`, `ptbuild doctor`).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ptbuild {

enum class RecipeKind { gpu_x86, gpu_arm, cpu };
std::string_view to_string(RecipeKind k);

struct MatrixConfig {
  std::string family = "pytorch";
  std::string python = "313";          // as in the names: python313
  std::string cuda = "13_0";           // as in the names: cuda13_0
  std::string pname_prefix;            // e.g. "pytorch210-": pname = prefix + name without "<family>-"
  std::map<std::string, std::string> gpu_archs;              // "sm90" -> "9.0" (gpuArchSM)
  std::map<std::string, std::vector<std::string>> isa_flags;  // "avx512" -> {"-mavx512f", …}
  std::vector<std::string> x86_isas;   // every GPU architecture gets these
  std::vector<std::string> arm_archs;  // these architectures also get the ARM ISAs
  std::vector<std::string> arm_isas;
  std::vector<std::string> cpu_isas;   // CPU-only variants
  std::map<RecipeKind, std::string> templates;              // kind -> template file, relative to the repo
  std::map<RecipeKind, std::vector<std::string>> require;   // text every recipe of the kind contains
  std::map<RecipeKind, std::vector<std::string>> forbid;    // text no recipe of the kind contains
};

struct PlannedRecipe {
  std::string name;  // "pytorch-python313-cuda13_0-sm90-avx512"
  RecipeKind kind;
  std::map<std::string, std::string> values;  // placeholder -> value
};

// Every variant the matrix asks for, in name order.
std::vector<PlannedRecipe> expand_matrix(const MatrixConfig& m);

// The template with @NAME@, @PNAME@, @FAMILY@, @PYTHON@, @CUDA@, @GPU_ARCH@ (sm90),
// @GPU_ARCH_SM@ ("9.0"), @GPU_ARCH_NUM@ ("90"), @ISA@ and @CPU_FLAGS@ (a Nix list's items:
// "-mavx2" "-mfma") filled in, under a first line that marks the file as generated.
std::string render_recipe(const std::string& template_text, const std::string& template_path, const PlannedRecipe& r);

// Whether a recipe file was written by render_recipe (only those are rewritten without --force).
bool is_generated(const std::string& recipe_text);

// "sm90" -> "9.0", "sm121" -> "12.1", the gpuTargets / gpuArchSM spelling of an architecture.
std::string arch_sm_value(const std::string& gpu_arch);

}  // namespace ptbuild
