// The recipe matrix as data (config [repo.matrix]): which variants a repo should have, what each
// should pin and select, and the recipe text each gets from its kind's template. Pure: reading and
// writing files is the client's job (`ptbuild recipes plan|render`, `ptbuild doctor`).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ptbuild {

enum class RecipeKind { gpu_x86, gpu_arm, cpu, darwin };
std::string_view to_string(RecipeKind k);
std::optional<RecipeKind> recipe_kind_named(std::string_view name);

// One CUDA version of a branch: real branches build several, each against its own nixpkgs pin
// (build-pytorch's pytorch-2.10-python313: 12_8 and 12_9 on one pin, 13_0 and 13_1 on others).
struct CudaGroup {
  std::string version;             // as in the names: "12_8"
  std::vector<std::string> archs;  // "sm61", "sm75", …
  std::string nixpkgs;             // the nixpkgs revision its recipes pin; empty: the matrix's
  std::string cuda_packages;  // the package set its overlay selects: "cudaPackages_13"; empty: not judged
};

struct MatrixConfig {
  std::string family = "pytorch";
  std::string python = "313";  // as in the names: python313
  std::string pname_prefix;    // e.g. "pytorch210-": pname = prefix + name without "<family>-"
  std::string nixpkgs;         // the pin of every variant whose CUDA group names none (CPU, darwin)
  std::vector<CudaGroup> cuda;
  std::map<std::string, std::string> gpu_archs;  // "sm90" -> "9.0", where the derived spelling is wrong
  std::map<std::string, std::vector<std::string>>
      isa_flags;                      // "avx512" -> {"-mavx512f", …}: the cpuFlags of the ISA
  std::vector<std::string> x86_isas;  // every GPU architecture gets these …
  std::vector<std::string> arm_isas;  // … and these, if it is in arm_archs (or arm_archs is not given)
  std::optional<std::vector<std::string>> arm_archs;
  std::map<std::string, std::vector<std::string>>
      arch_isas;                      // "sm61" -> {"avx", "avx2"}: instead of the above
  std::vector<std::string> cpu_isas;  // CPU-only variants
  std::vector<std::string> darwin;    // darwin variants: "mps" -> <family>-python313-darwin-mps
  // Per-architecture template text: "sm86" -> {"GPU_NAME" -> "RTX 3090, A40"} fills @GPU_NAME@.
  std::map<std::string, std::map<std::string, std::string>> arch_text;
  std::map<RecipeKind, std::string> templates;             // kind -> template file, relative to the repo
  std::map<RecipeKind, std::vector<std::string>> require;  // text every recipe of the kind contains
  std::map<RecipeKind, std::vector<std::string>> forbid;   // text no recipe of the kind contains
};

// What the matrix says one recipe should pin and select; empty fields are not declared.
struct RecipeExpectation {
  std::string group;  // "cuda13_0", "cpu", "darwin": recipes that should be alike
  std::string nixpkgs;
  std::string cuda_packages;
  std::vector<std::string> cpu_flags;
  bool declared_isa_flags = false;
};

struct PlannedRecipe {
  std::string name;  // "pytorch-python313-cuda13_0-sm90-avx512"
  RecipeKind kind;
  RecipeExpectation expect;
  std::map<std::string, std::string> values;  // placeholder -> value
};

// Every variant the matrix asks for, in name order.
std::vector<PlannedRecipe> expand_matrix(const MatrixConfig& m);

// The expectation for any recipe name of the repo, planned or not (a stray of cuda13_0 is still
// judged against the 13_0 pin).
RecipeExpectation expectation_for(const MatrixConfig& m, const std::string& name);

// The template with @NAME@, @PNAME@, @FAMILY@, @PYTHON@, @CUDA@ (13_0), @CUDA_DOTTED@ (13.0),
// @CUDA_PACKAGES@, @NIXPKGS@, @GPU_ARCH@ (sm90), @GPU_ARCH_SM@ ("9.0"), @GPU_ARCH_NUM@ ("90"),
// @ISA@, @CPU_FLAGS@ (a Nix list's items: "-mavx2" "-mfma") and the architecture's own arch_text
// filled in, under a first line that marks the file as generated.
std::string render_recipe(const std::string& template_text, const std::string& template_path,
                          const PlannedRecipe& r);

// The first @PLACEHOLDER@ left in a rendered text ("" when none): a template asking for a value
// the matrix does not give this recipe.
std::string unfilled_placeholder(const std::string& rendered);

// Whether a recipe file was written by render_recipe (only those are rewritten without --force).
bool is_generated(const std::string& recipe_text);

// "sm90" -> "9.0", "sm121" -> "12.1", the gpuTargets / TORCH_CUDA_ARCH_LIST spelling.
std::string arch_sm_value(const std::string& gpu_arch);

}  // namespace ptbuild
