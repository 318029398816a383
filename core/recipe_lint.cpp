#include "core/recipe_lint.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "core/variant.h"

namespace ptbuild {
namespace {

int line_of(const std::string& text, size_t offset) {
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(std::min(offset, text.size())), '\n'));
}

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '\''; }

// Every value of `attr = "value"` in the text, with its offset.
std::vector<std::pair<size_t, std::string>> string_values(const std::string& text, const std::string& attr) {
  std::vector<std::pair<size_t, std::string>> out;
  for (size_t at = text.find(attr); at != std::string::npos; at = text.find(attr, at + 1)) {
    if (at > 0 && ident_char(text[at - 1])) continue;
    size_t i = at + attr.size();
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size() || text[i] != '=') continue;
    ++i;
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size() || text[i] != '"') continue;
    size_t close = text.find('"', i + 1);
    if (close == std::string::npos) continue;
    out.emplace_back(at, text.substr(i + 1, close - i - 1));
  }
  return out;
}

// The string items of the list given to `attr = [ … ]`.
std::vector<std::pair<size_t, std::string>> list_strings(const std::string& text, const std::string& attr) {
  std::vector<std::pair<size_t, std::string>> out;
  for (size_t at = text.find(attr); at != std::string::npos; at = text.find(attr, at + 1)) {
    size_t open = text.find('[', at);
    size_t eq = text.find('=', at);
    if (open == std::string::npos || eq == std::string::npos || eq > open) continue;
    size_t close = text.find(']', open);
    for (size_t q = text.find('"', open); q != std::string::npos && q < close; q = text.find('"', q + 1)) {
      size_t end = text.find('"', q + 1);
      if (end == std::string::npos || end > close) break;
      out.emplace_back(q, text.substr(q + 1, end - q - 1));
      q = end;
    }
  }
  return out;
}

bool is_hex40(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// CUDA on at the derivation level: cudaSupport = true inside torch.override { … } (or nixpkgs'
// own config), not only in .overrideAttrs, which builds CPU-only.
bool cuda_enabled_by_override(const std::string& text) {
  for (size_t at = text.find("cudaSupport"); at != std::string::npos; at = text.find("cudaSupport", at + 1)) {
    size_t i = at + 11;
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size() || text[i] != '=') continue;
    size_t v = text.find_first_not_of(' ', i + 1);
    if (v == std::string::npos || text.compare(v, 4, "true") != 0) continue;
    std::string before = text.substr(at > 400 ? at - 400 : 0, at > 400 ? 400 : at);
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

}  // namespace

std::optional<RecipeKind> recipe_kind_of(const std::string& name) {
  VariantAxes a = parse_variant_name(name);
  if (!a.known()) return std::nullopt;
  if (!a.is_gpu()) return RecipeKind::cpu;
  return a.platform == "aarch64-linux" ? RecipeKind::gpu_arm : RecipeKind::gpu_x86;
}

std::vector<LintFinding> lint_recipe(const std::string& file, const std::string& name, const std::string& text,
                                     const LintRules& rules) {
  std::vector<LintFinding> out;
  auto add = [&](size_t offset, std::string problem, std::string hint) {
    out.push_back({file, line_of(text, offset), std::move(problem), std::move(hint)});
  };
  VariantAxes axes = parse_variant_name(name);
  std::optional<RecipeKind> kind = recipe_kind_of(name);

  // pname <-> file name.
  std::string family = rules.family.empty() ? axes.family.value_or("") : rules.family;
  std::string prefixed = !rules.pname_prefix.empty() && name.starts_with(family + "-")
                             ? rules.pname_prefix + name.substr(family.size() + 1)
                             : name;
  for (const auto& [at, pname] : string_values(text, "pname"))
    if (pname != name && pname != prefixed)
      add(at, "pname \"" + pname + "\" does not match the file name", "pname = \"" + prefixed + "\"");

  // The architecture in the name <-> gpuArchSM, gpuArchNum, gpuTargets.
  if (axes.is_gpu()) {
    std::string arch = *axes.gpu_arch;
    std::string sm = rules.gpu_archs.count(arch) ? rules.gpu_archs.at(arch) : arch_sm_value(arch);
    std::string flag = *axes.torch_arch_flag();
    auto right = [&](const std::string& v) { return v == sm || v == flag || v == arch; };
    for (const auto& [at, v] : string_values(text, "gpuArchSM"))
      if (!right(v)) add(at, "gpuArchSM = \"" + v + "\" in an " + arch + " recipe", "gpuArchSM = \"" + sm + "\"");
    for (const auto& [at, v] : string_values(text, "gpuArchNum"))
      if (v != arch.substr(2)) add(at, "gpuArchNum = \"" + v + "\" in an " + arch + " recipe", "gpuArchNum = \"" + arch.substr(2) + "\"");
    for (const auto& [at, v] : list_strings(text, "gpuTargets"))
      if (!right(v)) add(at, "gpuTargets has \"" + v + "\" in an " + arch + " recipe", "gpuTargets = [ \"" + sm + "\" ]");
    if (!cuda_enabled_by_override(text)) {
      size_t at = text.find(".overrideAttrs");
      add(at == std::string::npos ? 0 : at, "a GPU recipe without cudaSupport = true given through .override",
          "(python3Packages.torch.override { cudaSupport = true; gpuTargets = [ \"" + sm +
              "\" ]; }).overrideAttrs … — .overrideAttrs alone builds CPU-only");
    }
  }

  // python3Packages.pytorch: the attribute is torch.
  for (size_t at = text.find(".pytorch"); at != std::string::npos; at = text.find(".pytorch", at + 1)) {
    size_t end = at + 8;
    if (end < text.size() && ident_char(text[end])) continue;
    size_t start = at;
    while (start > 0 && (ident_char(text[start - 1]) || text[start - 1] == '.')) --start;
    std::string expr = text.substr(start, end - start);
    if (expr.find("Packages") == std::string::npos && !expr.starts_with("ps.") && !expr.starts_with("pprev.") &&
        !expr.starts_with("pfinal.") && !expr.starts_with("pyfinal.") && !expr.starts_with("pyprev."))
      continue;
    add(at, "`" + expr + "`: there is no such attribute in current nixpkgs", "use `" + expr.substr(0, expr.size() - 7) + "torch`");
  }

  // Patterns the config requires or forbids for this kind.
  if (kind) {
    auto rules_for = [&](const std::map<RecipeKind, std::vector<std::string>>& m, RecipeKind k) {
      auto it = m.find(k);
      return it == m.end() ? std::vector<std::string>{} : it->second;
    };
    for (const std::string& p : rules_for(rules.require, *kind))
      if (text.find(p) == std::string::npos)
        add(0, "a " + std::string(to_string(*kind)) + " recipe without `" + p + "`", "the matrix requires it ([repo.matrix.require])");
    for (const std::string& p : rules_for(rules.forbid, *kind))
      if (size_t at = text.find(p); at != std::string::npos)
        add(at, "a " + std::string(to_string(*kind)) + " recipe with `" + p + "`", "the matrix forbids it ([repo.matrix.forbid])");
  }
  return out;
}

std::vector<LintFinding> lint_pins(const std::vector<std::pair<std::string, std::string>>& file_texts) {
  struct Pin {
    std::string file;
    std::string rev;
    int line;
  };
  std::vector<Pin> pins;
  std::map<std::string, int> count;
  for (const auto& [file, text] : file_texts) {
    size_t line_start = 0;
    int line = 1;
    while (line_start < text.size()) {
      size_t end = text.find('\n', line_start);
      std::string l = text.substr(line_start, end == std::string::npos ? std::string::npos : end - line_start);
      if (l.find("nixpkgs") != std::string::npos) {
        for (size_t i = 0; i + 40 <= l.size(); ++i)
          if (is_hex40(std::string_view(l).substr(i, 40)) && (i == 0 || !std::isxdigit(static_cast<unsigned char>(l[i - 1]))) &&
              (i + 40 == l.size() || !std::isxdigit(static_cast<unsigned char>(l[i + 40])))) {
            pins.push_back({file, l.substr(i, 40), line});
            ++count[l.substr(i, 40)];
            break;
          }
      }
      if (end == std::string::npos) break;
      line_start = end + 1;
      ++line;
    }
  }
  if (count.size() < 2) return {};
  auto most = std::max_element(count.begin(), count.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  std::vector<LintFinding> out;
  for (const Pin& p : pins)
    if (p.rev != most->first)
      out.push_back({p.file, p.line, "nixpkgs pinned to " + p.rev.substr(0, 12),
                     std::to_string(most->second) + " recipes pin " + most->first.substr(0, 12) + ": use the same pin"});
  return out;
}

}  // namespace ptbuild
