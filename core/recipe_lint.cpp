#include "core/recipe_lint.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/variant.h"

namespace ptbuild {
namespace {

const std::vector<LintRule> kRules{
    {"scan", "recipes that cannot be listed"},
    {"stray", "recipes no axis of the matrix produces"},
    {"pname", "a pname that does not match the file name"},
    {"arch-value", "an architecture value of another GPU"},
    {"arch-spelling", "an architecture spelled as its use does not take it"},
    {"arch-platform", "a variant for a GPU that no machine of its platform has"},
    {"cuda-off", "a GPU recipe that builds without CUDA"},
    {"cpu-cuda", "a CPU-only recipe that switches CUDA on"},
    {"cuda-packages", "the CUDA package set of another CUDA version"},
    {"torch-attr", "python3Packages.pytorch, an attribute current nixpkgs does not have"},
    {"isa-flags", "compiler flags that do not fit the variant's instruction set"},
    {"pin", "a nixpkgs pin other than the matrix declares"},
    {"pin-split", "recipes of one CUDA version that pin different nixpkgs"},
    {"flags-split", "recipes of one instruction set with different cpuFlags"},
    {"hardcoded-parallelism", "parallelism fixed in the recipe, not the cores ptbuild gives the build"},
    {"require", "text the matrix requires is missing"},
    {"forbid", "text the matrix forbids is present"},
};

int line_of(const std::string& text, size_t offset) {
  return 1 + static_cast<int>(std::count(
                 text.begin(), text.begin() + static_cast<long>(std::min(offset, text.size())), '\n'));
}

bool ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '\'';
}

// The text with Nix comments (`# …` and `/* … */` outside strings) blanked, offsets kept: a value
// named in a comment is not a value the build uses.
std::string code_of(const std::string& text) {
  std::string out = text;
  enum { code, string, indented } state = code;
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    if (state == string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        state = code;
    } else if (state == indented) {
      if (c == '\'' && i + 1 < out.size() && out[i + 1] == '\'') {
        if (i + 2 < out.size() && (out[i + 2] == '$' || out[i + 2] == '\'' || out[i + 2] == '\\'))
          i += 2;  // ''$ ''' ''\ escapes
        else {
          state = code;
          ++i;
        }
      }
    } else if (c == '"') {
      state = string;
    } else if (c == '\'' && i + 1 < out.size() && out[i + 1] == '\'') {
      state = indented;
      ++i;
    } else if (c == '#') {
      for (; i < out.size() && out[i] != '\n'; ++i) out[i] = ' ';
    } else if (c == '/' && i + 1 < out.size() && out[i + 1] == '*') {
      size_t end = out.find("*/", i + 2);
      end = end == std::string::npos ? out.size() : end + 2;
      for (; i < end; ++i)
        if (out[i] != '\n') out[i] = ' ';
      --i;
    }
  }
  return out;
}

// Every `name = "value"` binding of the text whose name passes `want`.
struct Binding {
  size_t at;
  std::string name, value;
};
template <class Want>
std::vector<Binding> string_bindings(const std::string& code, Want want) {
  std::vector<Binding> out;
  for (size_t eq = code.find('='); eq != std::string::npos; eq = code.find('=', eq + 1)) {
    if ((eq + 1 < code.size() && code[eq + 1] == '=') ||
        (eq > 0 && std::string_view("=!<>").find(code[eq - 1]) != std::string_view::npos))
      continue;
    size_t end = eq;
    while (end > 0 && code[end - 1] == ' ') --end;
    size_t start = end;
    while (start > 0 && ident_char(code[start - 1])) --start;
    size_t v = code.find_first_not_of(' ', eq + 1);
    if (start == end || v == std::string::npos || code[v] != '"') continue;
    size_t close = code.find('"', v + 1);
    if (close == std::string::npos) continue;
    std::string name = code.substr(start, end - start);
    if (want(name)) out.push_back({start, name, code.substr(v + 1, close - v - 1)});
  }
  return out;
}

// The string items of every list given to `attr = [ … ]`, with their offsets.
std::vector<std::pair<size_t, std::string>> list_strings(const std::string& code, const std::string& attr) {
  std::vector<std::pair<size_t, std::string>> out;
  for (size_t at = code.find(attr); at != std::string::npos; at = code.find(attr, at + 1)) {
    size_t eq = code.find_first_not_of(' ', at + attr.size());
    if ((at > 0 && ident_char(code[at - 1])) || eq == std::string::npos || code[eq] != '=') continue;
    size_t open = code.find_first_not_of(" \n", eq + 1);
    if (open == std::string::npos || code[open] != '[') continue;
    size_t close = code.find(']', open);
    for (size_t q = code.find('"', open); q != std::string::npos && q < close; q = code.find('"', q + 1)) {
      size_t end = code.find('"', q + 1);
      if (end == std::string::npos || end > close) break;
      out.emplace_back(q, code.substr(q + 1, end - q - 1));
      q = end;
    }
  }
  return out;
}

// ---- architectures: which GPU a value names, and in which spelling -------------------------

enum class Spelling { dotted, sm, plain };  // "8.6", "sm_86", "86"

struct ArchValue {
  int number;  // 86
  Spelling spelling;
};

std::optional<ArchValue> parse_arch_value(std::string v) {
  for (const char* suffix : {"+PTX", "+ptx", "-real", "-virtual"})
    if (v.ends_with(suffix)) v.resize(v.size() - std::string_view(suffix).size());
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
  };
  for (const char* prefix : {"sm_", "compute_", "sm"})
    if (v.starts_with(prefix)) {
      std::string rest = v.substr(std::string_view(prefix).size());
      if (!rest.empty() && (rest.back() == 'a' || rest.back() == 'f')) rest.pop_back();
      if (digits(rest) && rest.size() >= 2) return ArchValue{std::stoi(rest), Spelling::sm};
      return std::nullopt;
    }
  if (size_t dot = v.find('.'); dot != std::string::npos) {
    std::string major = v.substr(0, dot), minor = v.substr(dot + 1);
    if (digits(major) && major.size() <= 2 && minor.size() == 1 && digits(minor))
      return ArchValue{std::stoi(major + minor), Spelling::dotted};
    return std::nullopt;
  }
  if (digits(v) && v.size() >= 2) return ArchValue{std::stoi(v), Spelling::plain};
  return std::nullopt;
}

std::string spell(int number, Spelling s, const std::string& dotted_override) {
  std::string n = std::to_string(number);
  switch (s) {
    case Spelling::dotted:
      return dotted_override.empty() ? n.substr(0, n.size() - 1) + "." + n.substr(n.size() - 1)
                                     : dotted_override;
    case Spelling::sm:
      return "sm_" + n;
    case Spelling::plain:
      return n;
  }
  return n;
}

// Where an architecture value goes decides its spelling: nixpkgs hands gpuTargets (and
// cudaCapabilities) to TORCH_CUDA_ARCH_LIST, whose parser (CUDA_SELECT_NVCC_ARCH_FLAGS) takes
// "8.6" and stops at "sm_86" (build-pytorch b8d708d, d052e0b); CMAKE_CUDA_ARCHITECTURES takes "86".
struct ArchUse {
  std::string_view where;
  Spelling takes;
};
constexpr ArchUse kListUses[] = {{"gpuTargets", Spelling::dotted}, {"cudaCapabilities", Spelling::dotted}};
constexpr ArchUse kLineUses[] = {{"TORCH_CUDA_ARCH_LIST", Spelling::dotted},
                                 {"CMAKE_CUDA_ARCHITECTURES", Spelling::plain}};

bool word_at(const std::string& code, size_t at, size_t len) {
  return (at == 0 || !ident_char(code[at - 1])) && (at + len >= code.size() || !ident_char(code[at + len]));
}

// The uses of identifier `name` in the code, outside its own binding at `bound_at`.
std::vector<ArchUse> uses_of(const std::string& code, const std::string& name, size_t bound_at) {
  std::vector<ArchUse> out;
  auto add = [&](ArchUse u) {
    if (std::none_of(out.begin(), out.end(), [&](const ArchUse& o) { return o.where == u.where; }))
      out.push_back(u);
  };
  for (size_t at = code.find(name); at != std::string::npos; at = code.find(name, at + 1)) {
    if (at == bound_at || !word_at(code, at, name.size())) continue;
    size_t line_start = code.rfind('\n', at);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    std::string_view line(code.data() + line_start, code.find('\n', at) == std::string::npos
                                                        ? code.size() - line_start
                                                        : code.find('\n', at) - line_start);
    for (const ArchUse& u : kLineUses)
      if (line.find(u.where) != std::string_view::npos) add(u);
    size_t open = code.rfind('[', at);
    if (open != std::string::npos && code.find(']', open) > at)
      for (const ArchUse& u : kListUses) {
        size_t attr = code.rfind(std::string(u.where), open);
        if (attr != std::string::npos && code.find_first_not_of(" =\n", attr + u.where.size()) == open)
          add(u);
      }
  }
  return out;
}

// ---- instruction sets -----------------------------------------------------------------------

// Flags that make the compiler emit instructions some CPUs of the ISA level lack: the binary
// dies with SIGILL there (build-pytorch f3e1d8b: -mfma in an avx build, on an Ivy Bridge).
std::vector<std::string_view> flags_beyond(std::string_view isa) {
  if (isa == "avx") return {"-mfma", "-mf16c", "-mavx2", "-mbmi", "-mbmi2", "-mavx512", "-mamx"};
  if (isa == "avx2") return {"-mavx512", "-mamx"};
  if (isa == "avx512") return {"-mavx512bf16", "-mavx512vnni", "-mavx512fp16", "-mamx"};
  if (isa == "avx512vnni") return {"-mavx512bf16", "-mavx512fp16", "-mamx"};
  if (isa == "avx512bf16") return {"-mavx512fp16", "-mamx"};
  if (isa == "armv8_2") return {"-march=armv9", "+sve"};
  return {};
}

// GPUs built only into aarch64 machines (Jetson, DRIVE/Jetson Thor, DGX Spark's GB10).
bool arm_only_gpu(int number) {
  return number == 53 || number == 62 || number == 72 || number == 87 || number == 101 || number == 110 ||
         number == 121;
}

// CUDA on at the derivation level: cudaSupport = true inside torch.override { … } (or nixpkgs'
// own config), not only in .overrideAttrs, which builds CPU-only.
bool cuda_enabled_by_override(const std::string& code) {
  for (size_t at = code.find("cudaSupport"); at != std::string::npos; at = code.find("cudaSupport", at + 1)) {
    size_t i = at + 11;
    while (i < code.size() && code[i] == ' ') ++i;
    if (i >= code.size() || code[i] != '=') continue;
    size_t v = code.find_first_not_of(' ', i + 1);
    if (v == std::string::npos || code.compare(v, 4, "true") != 0) continue;
    std::string before = code.substr(at > 400 ? at - 400 : 0, at > 400 ? 400 : at);
    size_t override_at = before.rfind(".override");
    bool attrs = override_at != std::string::npos && before.compare(override_at, 14, ".overrideAttrs") == 0;
    // nixpkgs' own config (import nixpkgs { config = { cudaSupport = true; }; }) enables it too.
    size_t config_at = before.rfind("config = {");
    if (before.ends_with("config.") ||
        (config_at != std::string::npos && (override_at == std::string::npos || config_at > override_at)))
      return true;
    if (override_at != std::string::npos && !attrs) return true;
  }
  return false;
}

bool is_hex40(std::string_view s) {
  return s.size() == 40 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// The first 40-hex revision on a line that names nixpkgs.
std::optional<NixpkgsPin> pin_in_code(const std::string& code) {
  for (size_t start = 0, line = 1; start < code.size(); ++line) {
    size_t end = std::min(code.find('\n', start), code.size());
    std::string_view l(code.data() + start, end - start);
    if (l.find("nixpkgs") != std::string_view::npos)
      for (size_t i = 0; i + 40 <= l.size(); ++i)
        if (is_hex40(l.substr(i, 40)) && (i == 0 || !std::isxdigit(static_cast<unsigned char>(l[i - 1]))) &&
            (i + 40 == l.size() || !std::isxdigit(static_cast<unsigned char>(l[i + 40]))))
          return NixpkgsPin{std::string(l.substr(i, 40)), static_cast<int>(line)};
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace

const std::vector<LintRule>& lint_rules() {
  return kRules;
}

const LintRule* find_lint_rule(std::string_view name) {
  for (const LintRule& r : kRules)
    if (r.name == name) return &r;
  return nullptr;
}

std::optional<RecipeKind> recipe_kind_of(const std::string& name) {
  VariantAxes a = parse_variant_name(name);
  if (!a.known()) return std::nullopt;
  if (a.platform == "darwin") return RecipeKind::darwin;
  if (!a.is_gpu()) return RecipeKind::cpu;
  return a.platform == "aarch64-linux" ? RecipeKind::gpu_arm : RecipeKind::gpu_x86;
}

std::optional<NixpkgsPin> find_nixpkgs_pin(const std::string& text) {
  return pin_in_code(code_of(text));
}

namespace {

// What every rule looks at: the recipe, its code without comments and strings' noise, the
// variant its name says, and what the matrix expects of it.
struct LintInput {
  const std::string& file;
  const std::string& name;
  const std::string& text;
  const std::string code;
  const LintRules& rules;
  const RecipeExpectation& expect;
  VariantAxes axes;
  std::optional<RecipeKind> kind;
};

class Findings {
 public:
  Findings(const LintInput& in, std::vector<LintFinding>& out) : in_(in), out_(out) {}
  void add(std::string_view rule, size_t offset, std::string problem, std::string hint) {
    out_.push_back(
        {std::string(rule), in_.file, line_of(in_.text, offset), std::move(problem), std::move(hint)});
  }
  void add_at_line(std::string_view rule, int line, std::string problem, std::string hint) {
    out_.push_back({std::string(rule), in_.file, line, std::move(problem), std::move(hint)});
  }

 private:
  const LintInput& in_;
  std::vector<LintFinding>& out_;
};

// pname <-> file name.
void lint_pname(const LintInput& in, Findings& f) {
  std::string family = in.rules.family.empty() ? in.axes.family.value_or("") : in.rules.family;
  std::string prefixed = !in.rules.pname_prefix.empty() && in.name.starts_with(family + "-")
                             ? in.rules.pname_prefix + in.name.substr(family.size() + 1)
                             : in.name;
  for (const Binding& b : string_bindings(in.code, [](const std::string& n) { return n == "pname"; }))
    if (b.value != in.name && b.value != prefixed)
      f.add("pname", b.at, "pname \"" + b.value + "\" does not match the file name",
            "pname = \"" + prefixed + "\"");
}

// The architecture's number and the dotted spelling the matrix gives it ("" none).
struct OwnArch {
  std::string arch;
  int number;  // -1: a name no value can match (sm1000)
  std::string dotted;
};

OwnArch own_arch(const LintInput& in) {
  const std::string& arch = *in.axes.gpu_arch;
  auto parsed = parse_arch_value(arch);
  return {arch, parsed ? parsed->number : -1,
          in.rules.gpu_archs.count(arch) ? in.rules.gpu_archs.at(arch) : ""};
}

// Bound values (gpuArchSM = "9.0") are judged by the GPU they name and by where they go; one used
// nowhere but in messages may take any spelling of the right GPU. Lists (gpuTargets) likewise.
void lint_arch_values(const LintInput& in, Findings& f) {
  OwnArch own = own_arch(in);
  if (own.number < 0) return;
  auto archish = [](const std::string& n) {
    std::string lower = n;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return lower.find("arch") != std::string::npos || lower.find("capabilit") != std::string::npos;
  };
  for (const Binding& b : string_bindings(in.code, archish)) {
    auto v = parse_arch_value(b.value);
    if (!v) continue;
    if (v->number != own.number) {
      f.add("arch-value", b.at, b.name + " = \"" + b.value + "\" in an " + own.arch + " recipe",
            b.name + " = \"" + spell(own.number, v->spelling, own.dotted) + "\"");
      continue;
    }
    for (const ArchUse& use : uses_of(in.code, b.name, b.at))
      if (use.takes != v->spelling)
        f.add("arch-spelling", b.at,
              b.name + " = \"" + b.value + "\" goes to " + std::string(use.where) + ", which takes \"" +
                  spell(own.number, use.takes, own.dotted) + "\"",
              b.name + " = \"" + spell(own.number, use.takes, own.dotted) + "\"");
  }
  for (const ArchUse& use : kListUses)
    for (const auto& [at, value] : list_strings(in.code, std::string(use.where))) {
      auto v = parse_arch_value(value);
      if (!v) continue;
      std::string fix =
          std::string(use.where) + " = [ \"" + spell(own.number, use.takes, own.dotted) + "\" ]";
      if (v->number != own.number)
        f.add("arch-value", at,
              std::string(use.where) + " has \"" + value + "\" in an " + own.arch + " recipe", fix);
      else if (v->spelling != use.takes)
        f.add("arch-spelling", at, std::string(use.where) + " has \"" + value + "\", which it does not take",
              fix);
    }
}

void lint_arch_platform(const LintInput& in, Findings& f) {
  OwnArch own = own_arch(in);
  if (in.axes.platform == "x86_64-linux" && arm_only_gpu(own.number))
    f.add("arch-platform", 0,
          "an x86_64 variant for " + own.arch + ", a GPU built only into aarch64 machines",
          "delete it: nothing can run it (build " + own.arch + " for armv8_2 / armv9)");
}

void lint_cuda_off(const LintInput& in, Findings& f) {
  if (cuda_enabled_by_override(in.code)) return;
  OwnArch own = own_arch(in);
  size_t at = in.code.find(".overrideAttrs");
  f.add("cuda-off", at == std::string::npos ? 0 : at,
        "a GPU recipe without cudaSupport = true given through .override",
        "(python3Packages.torch.override { cudaSupport = true; gpuTargets = [ \"" +
            (own.dotted.empty() ? arch_sm_value(own.arch) : own.dotted) +
            "\" ]; }).overrideAttrs … — .overrideAttrs alone builds CPU-only");
}

// The package set the overlay selects: of this CUDA version, and the declared one.
void lint_cuda_packages(const LintInput& in, Findings& f) {
  const std::string& code = in.code;
  const std::string& wanted_set = in.expect.cuda_packages;
  std::set<std::string> seen;
  for (size_t at = code.find("cudaPackages_"); at != std::string::npos;
       at = code.find("cudaPackages_", at + 1)) {
    size_t end = at + 13;
    while (end < code.size() && (std::isdigit(static_cast<unsigned char>(code[end])) || code[end] == '_'))
      ++end;
    std::string token = code.substr(at, end - at);
    while (token.ends_with("_")) token.pop_back();
    if (!word_at(code, at, end - at) || token.size() <= 13) continue;
    seen.insert(token);
    std::string version = token.substr(13), want = *in.axes.cuda;
    bool fits = wanted_set.empty() ? want == version || want.starts_with(version + "_") : token == wanted_set;
    if (!fits)
      f.add(
          "cuda-packages", at, token + " in a " + std::string("cuda") + want + " recipe",
          wanted_set.empty() ? "select the package set of CUDA " + want : "the matrix selects " + wanted_set);
  }
  if (!wanted_set.empty() && !seen.count(wanted_set))
    f.add("cuda-packages", 0, "a cuda" + *in.axes.cuda + " recipe that selects no " + wanted_set,
          "(final: prev: { cudaPackages = final." + wanted_set +
              "; }) — without it the pin's default CUDA builds");
}

void lint_cpu_cuda(const LintInput& in, Findings& f) {
  const std::string& code = in.code;
  for (size_t at = code.find("cudaSupport"); at != std::string::npos; at = code.find("cudaSupport", at + 1)) {
    size_t v = code.find_first_not_of(" =", at + 11);
    if (v != std::string::npos && code.compare(v, 4, "true") == 0 && code.find('=', at) < v)
      f.add("cpu-cuda", at, "cudaSupport = true in a CPU-only recipe",
            "remove it: torch takes config.cudaSupport as its default and builds CUDA for nothing");
  }
}

// python3Packages.pytorch: the attribute is torch.
void lint_torch_attr(const LintInput& in, Findings& f) {
  const std::string& code = in.code;
  for (size_t at = code.find(".pytorch"); at != std::string::npos; at = code.find(".pytorch", at + 1)) {
    size_t end = at + 8;
    if (end < code.size() && ident_char(code[end])) continue;
    size_t start = at;
    while (start > 0 && (ident_char(code[start - 1]) || code[start - 1] == '.')) --start;
    std::string expr = code.substr(start, end - start);
    if (expr.find("Packages") == std::string::npos && !expr.starts_with("ps.") &&
        !expr.starts_with("pprev.") && !expr.starts_with("pfinal.") && !expr.starts_with("pyfinal.") &&
        !expr.starts_with("pyprev."))
      continue;
    f.add("torch-attr", at, "`" + expr + "`: there is no such attribute in current nixpkgs",
          "use `" + expr.substr(0, expr.size() - 7) + "torch`");
  }
}

// cpuFlags against the instruction set in the name, and against the matrix's flags.
void lint_isa_flags(const LintInput& in, Findings& f) {
  const std::string& isa = *in.axes.isa;
  auto flags = list_strings(in.code, "cpuFlags");
  for (const auto& [at, flag] : flags) {
    for (std::string_view beyond : flags_beyond(isa))
      if (flag.starts_with(beyond) || (beyond.starts_with("+") && flag.find(beyond) != std::string::npos)) {
        f.add("isa-flags", at, "cpuFlags has \"" + flag + "\" in an " + isa + " recipe",
              "CPUs of the " + isa + " level lack it and the build dies there with SIGILL: remove it");
        break;
      }
    if (flag == "-march=native" || flag == "-mcpu=native")
      f.add("isa-flags", at, "cpuFlags has \"" + flag + "\"",
            "it builds for the build machine, not for " + isa);
  }
  std::multiset<std::string> have, want(in.expect.cpu_flags.begin(), in.expect.cpu_flags.end());
  for (const auto& [_, flag] : flags) have.insert(flag);
  if (in.expect.declared_isa_flags && !flags.empty() && have != want) {
    std::string list;
    for (const std::string& flag : in.expect.cpu_flags) list += "\"" + flag + "\" ";
    f.add("isa-flags", flags.front().first, "cpuFlags are not the matrix's " + isa + " flags",
          "cpuFlags = [ " + list + "]");
  }
}

void lint_pin(const LintInput& in, Findings& f) {
  const std::string& want = in.expect.nixpkgs;
  if (auto pin = pin_in_code(in.code); pin && !pin->rev.starts_with(want) && !want.starts_with(pin->rev))
    f.add_at_line("pin", pin->line, "nixpkgs pinned to " + pin->rev.substr(0, 12),
                  "the matrix pins " + in.expect.group + " to " + want.substr(0, 12));
}

// Patterns the config requires or forbids for this kind.
void lint_required_patterns(const LintInput& in, Findings& f) {
  auto rules_for = [&](const std::map<RecipeKind, std::vector<std::string>>& m) {
    auto it = m.find(*in.kind);
    return it == m.end() ? std::vector<std::string>{} : it->second;
  };
  std::string kind(to_string(*in.kind));
  for (const std::string& p : rules_for(in.rules.require))
    if (in.text.find(p) == std::string::npos)
      f.add("require", 0, "a " + kind + " recipe without `" + p + "`",
            "the matrix requires it ([repo.matrix.require])");
  for (const std::string& p : rules_for(in.rules.forbid))
    if (size_t at = in.text.find(p); at != std::string::npos)
      f.add("forbid", at, "a " + kind + " recipe with `" + p + "`",
            "the matrix forbids it ([repo.matrix.forbid])");
}

// The rules, and which recipes each applies to, in the order their findings are listed.
struct RuleCheck {
  bool (*applies)(const LintInput&);
  void (*check)(const LintInput&, Findings&);
};
bool always(const LintInput&) {
  return true;
}
bool gpu(const LintInput& in) {
  return in.axes.is_gpu();
}
bool known_cpu(const LintInput& in) {
  return !in.axes.is_gpu() && in.kind;
}
bool has_isa(const LintInput& in) {
  return in.axes.isa.has_value();
}
bool pinned_by_matrix(const LintInput& in) {
  return !in.expect.nixpkgs.empty();
}
bool known_kind(const LintInput& in) {
  return in.kind.has_value();
}
// A fixed -jN, MAX_JOBS=N or a switched-off parallel build ignores the cores ptbuild gives the
// build (docs/resources.md): it packs builds by memory, which such a recipe defeats. Read from the
// text as written (the flags are inside strings), comment lines aside.
void lint_parallelism(const LintInput& in, Findings& f) {
  const std::string& t = in.text;
  auto digits_at = [&](size_t i) {
    size_t end = i;
    while (end < t.size() && std::isdigit(static_cast<unsigned char>(t[end]))) ++end;
    return end > i && (end == t.size() || !std::isalnum(static_cast<unsigned char>(t[end])))
               ? t.substr(i, end - i)
               : std::string();
  };
  auto commented = [&](size_t at) {
    size_t start = t.rfind('\n', at);
    start = start == std::string::npos ? 0 : start + 1;
    size_t hash = t.find('#', start);
    return hash != std::string::npos && hash < at;
  };
  for (size_t at = t.find("-j"); at != std::string::npos; at = t.find("-j", at + 2)) {
    bool word_start =
        at == 0 || t[at - 1] == '"' || t[at - 1] == ' ' || t[at - 1] == '\'' || t[at - 1] == '=';
    std::string n = digits_at(at + 2);
    if (word_start && !n.empty() && !commented(at))
      f.add("hardcoded-parallelism", at,
            "-j" + n + " builds with " + n + " jobs whatever cores the build is given",
            "drop it: with enableParallelBuilding the setup hooks pass -j$NIX_BUILD_CORES");
  }
  for (size_t at = t.find("MAX_JOBS="); at != std::string::npos; at = t.find("MAX_JOBS=", at + 9)) {
    std::string n = digits_at(at + 9);
    if (!n.empty() && !commented(at))
      f.add("hardcoded-parallelism", at,
            "MAX_JOBS=" + n + " runs " + n + " compilers whatever cores the build is given",
            "export MAX_JOBS=$NIX_BUILD_CORES");
  }
  for (size_t at = t.find("enableParallelBuilding"); at != std::string::npos;
       at = t.find("enableParallelBuilding", at + 1)) {
    size_t eq = t.find_first_not_of(" \t", at + 22);
    if (eq == std::string::npos || t[eq] != '=') continue;
    size_t value = t.find_first_not_of(" \t", eq + 1);
    if (value != std::string::npos && t.compare(value, 5, "false") == 0 && !commented(at))
      f.add("hardcoded-parallelism", at, "enableParallelBuilding = false builds on one core",
            "enableParallelBuilding = true (the build gets $NIX_BUILD_CORES)");
  }
}

constexpr RuleCheck kChecks[] = {
    {always, lint_pname},
    {gpu, lint_arch_values},
    {gpu, lint_arch_platform},
    {gpu, lint_cuda_off},
    {gpu, lint_cuda_packages},
    {known_cpu, lint_cpu_cuda},
    {always, lint_torch_attr},
    {has_isa, lint_isa_flags},
    {pinned_by_matrix, lint_pin},
    {always, lint_parallelism},
    {known_kind, lint_required_patterns},
};

}  // namespace

std::vector<LintFinding> lint_recipe(const std::string& file, const std::string& name,
                                     const std::string& text, const LintRules& rules,
                                     const RecipeExpectation& expect) {
  std::vector<LintFinding> out;
  LintInput in{
      file, name, text, code_of(text), rules, expect, parse_variant_name(name), recipe_kind_of(name)};
  Findings findings(in, out);
  for (const RuleCheck& check : kChecks)
    if (check.applies(in)) check.check(in, findings);
  return out;
}

std::optional<CpuFlags> find_cpu_flags(const std::string& text) {
  std::string code = code_of(text);
  auto items = list_strings(code, "cpuFlags");
  if (items.empty()) return std::nullopt;
  CpuFlags out;
  out.line = line_of(text, code.rfind("cpuFlags", items.front().first));
  for (auto& [_, flag] : items) out.flags.push_back(std::move(flag));
  return out;
}

std::vector<LintFinding> lint_splits(std::string_view rule, std::string_view has, std::string_view declare_as,
                                     const std::vector<GroupedValue>& values) {
  std::map<std::string, std::map<std::string, std::vector<const GroupedValue*>>>
      groups;  // group -> value -> recipes
  for (const GroupedValue& v : values) groups[v.group][v.value].push_back(&v);
  std::vector<LintFinding> out;
  for (const auto& [group, by_value] : groups) {
    if (by_value.size() < 2) continue;
    for (const auto& [value, with] : by_value) {
      std::string others;
      for (const auto& [other, also] : by_value)
        if (other != value)
          others += (others.empty() ? "" : ", ") + other + " (" + std::to_string(also.size()) + ")";
      out.push_back(
          {std::string(rule), with.front()->file, with.front()->line,
           std::to_string(with.size()) + " " + group + " recipe(s) " + std::string(has) + " " + value,
           "others of " + group + ": " + others + "; declare the right one in [repo.matrix] (" +
               std::string(declare_as) + ") and doctor names the recipes to change"});
    }
  }
  return out;
}

}  // namespace ptbuild
