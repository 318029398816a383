// The offline commands (no daemon needed): `ptbuild recipes plan|render` keeps a repo's recipes
// in line with [repo.matrix]; `ptbuild doctor` lints every recipe.

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "client/commands.h"
#include "core/recipe_lint.h"
#include "core/recipe_matrix.h"
#include "core/text.h"
#include "core/variant.h"
#include "local/files.h"
#include "local/recipes.h"

namespace ptbuild::client {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::optional<std::string> read_text(const fs::path& p) {
  return read_file(p.string());
}

// Written next to its destination and renamed over it: a reader never sees half a recipe.
void write_atomically(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  if (std::string err = write_file_atomically(path.string(), text); !err.empty()) throw UsageError{err};
}

struct RepoPlan {
  const RepoConfig* repo;
  std::vector<std::pair<PlannedRecipe, std::string>>
      missing;  // recipe, rendered text ("" without a template)
  std::vector<std::pair<PlannedRecipe, std::string>> drifted;  // recipe, rendered text
  std::vector<std::string> stray;                              // packages no axis produces
  std::map<std::string, std::string> files;                    // package -> recipe file
  int in_line = 0;
  int untemplated = 0;  // present, of a kind without a template: nothing to compare them with
  bool in_order() const { return missing.empty() && drifted.empty() && stray.empty(); }
};

// The recipes of the matrix's family and python that no axis produces.
std::vector<Recipe> strays(const MatrixConfig& m, const std::vector<Recipe>& recipes) {
  std::set<std::string> expected;
  for (const PlannedRecipe& r : expand_matrix(m)) expected.insert(r.name);
  std::string prefix = m.family + "-python" + m.python + "-";
  std::vector<Recipe> out;
  for (const Recipe& r : recipes)
    if (r.package.starts_with(prefix) && !expected.count(r.package)) out.push_back(r);
  return out;
}

RepoPlan plan_repo(const RepoConfig& repo) {
  const MatrixConfig& m = *repo.matrix;
  RepoPlan plan{&repo, {}, {}, {}, {}, 0, 0};
  RecipeScan scan = scan_recipes(repo.path, repo.recipes);
  for (const Recipe& r : scan.recipes) plan.files[r.package] = r.file;
  std::map<RecipeKind, std::string> templates;
  for (const PlannedRecipe& r : expand_matrix(m)) {
    auto file = plan.files.find(r.name);
    auto t = m.templates.find(r.kind);
    if (t == m.templates.end()) {  // a matrix without templates still says what is missing
      if (file == plan.files.end())
        plan.missing.emplace_back(r, "");
      else
        ++plan.untemplated;
      continue;
    }
    if (!templates.count(r.kind)) {
      auto text = read_text(fs::path(repo.path) / t->second);
      if (!text)
        throw UsageError{"repo '" + repo.name + "': cannot read template " +
                         (fs::path(repo.path) / t->second).string()};
      templates[r.kind] = *text;
    }
    std::string rendered = render_recipe(templates[r.kind], t->second, r);
    if (std::string left = unfilled_placeholder(rendered); !left.empty())
      throw UsageError{"repo '" + repo.name + "': template " + t->second + " uses " + left +
                       ", which the matrix gives no value for " + r.name +
                       " (per-architecture text goes in [repo.matrix.arch_text." + r.values.at("@GPU_ARCH@") +
                       "])"};
    if (file == plan.files.end()) {
      plan.missing.emplace_back(r, rendered);
    } else if (read_text(fs::path(repo.path) / file->second) != rendered) {
      plan.drifted.emplace_back(r, rendered);
    } else {
      ++plan.in_line;
    }
  }
  for (const Recipe& r : strays(m, scan.recipes)) plan.stray.push_back(r.package);
  return plan;
}

std::vector<RepoPlan> plan_all(Context& ctx) {
  std::vector<RepoPlan> plans;
  for (const RepoConfig& repo : ctx.config().repos)
    if (repo.matrix) plans.push_back(plan_repo(repo));
  if (plans.empty())
    throw UsageError{"no [repo.matrix] in the config (" + ctx.config().source + "): nothing to plan"};
  return plans;
}

std::string recipe_path(const RepoConfig& repo, const std::string& package) {
  return repo.recipes + "/" + package + ".nix";
}

int recipes_plan(Context& ctx) {
  json out = json::array();
  bool in_order = true;
  for (const RepoPlan& p : plan_all(ctx)) {
    in_order = in_order && p.in_order();
    json repo{{"repo", p.repo->name},     {"in_line", p.in_line},     {"untemplated", p.untemplated},
              {"missing", json::array()}, {"drifted", json::array()}, {"stray", p.stray}};
    for (const auto& [r, _] : p.missing) repo["missing"].push_back(r.name);
    for (const auto& [r, _] : p.drifted) repo["drifted"].push_back(r.name);
    out.push_back(repo);
    if (ctx.json) continue;
    std::cout << "repo " << p.repo->name << ": " << p.in_line << " in line with the templates, ";
    if (p.untemplated) std::cout << p.untemplated << " present without a template to compare, ";
    std::cout << p.missing.size() << " missing, " << p.drifted.size() << " drifted, " << p.stray.size()
              << " stray\n";
    for (const auto& [r, text] : p.missing)
      std::cout << "  missing  " << recipe_path(*p.repo, r.name) << "  (" << to_string(r.kind)
                << (text.empty() ? "; no template" : "") << ")\n";
    for (const auto& [r, _] : p.drifted)
      std::cout << "  drifted  " << p.files.at(r.name) << "  (differs from its " << to_string(r.kind)
                << " template"
                << (is_generated(read_text(fs::path(p.repo->path) / p.files.at(r.name)).value_or(""))
                        ? ""
                        : "; not generated")
                << ")\n";
    for (const std::string& s : p.stray)
      std::cout << "  stray    " << p.files.at(s) << "  (no axis of the matrix produces it)\n";
  }
  if (ctx.json) std::cout << json{{"repos", out}}.dump(2) << "\n";
  return in_order ? kOk : kWorkFailed;
}

int recipes_render(Context& ctx, bool write, bool force) {
  json created = json::array(), rewritten = json::array(), kept = json::array();
  for (const RepoPlan& p : plan_all(ctx)) {
    for (const auto& [r, text] : p.missing) {
      if (text.empty())
        throw UsageError{"repo '" + p.repo->name + "': repo.matrix.templates has no " +
                         std::string(to_string(r.kind)) + " template, needed to write " + r.name};
      write_atomically(fs::path(p.repo->path) / recipe_path(*p.repo, r.name), text);
      created.push_back(p.repo->path + "/" + recipe_path(*p.repo, r.name));
    }
    for (const auto& [r, text] : p.drifted) {
      fs::path file = fs::path(p.repo->path) / p.files.at(r.name);
      bool generated = is_generated(read_text(file).value_or(""));
      if (write && (generated || force)) {
        write_atomically(file, text);
        rewritten.push_back(file.string());
      } else {
        kept.push_back({{"file", file.string()},
                        {"why", !write ? "differs from its template (rewrite with --write)"
                                       : "not generated by ptbuild (rewrite with --force)"}});
      }
    }
  }
  if (ctx.json) {
    std::cout << json{{"created", created}, {"rewritten", rewritten}, {"kept", kept}}.dump(2) << "\n";
    return kOk;
  }
  for (const auto& f : created) std::cout << "created    " << f.get<std::string>() << "\n";
  for (const auto& f : rewritten) std::cout << "rewrote    " << f.get<std::string>() << "\n";
  for (const auto& k : kept)
    std::cout << "left as is " << k["file"].get<std::string>() << ": " << k["why"].get<std::string>() << "\n";
  if (!created.empty() || !rewritten.empty()) {
    std::cout << "\nready to add:  git add";
    for (const auto& f : created) std::cout << " " << f.get<std::string>();
    for (const auto& f : rewritten) std::cout << " " << f.get<std::string>();
    std::cout << "\n";
  } else {
    std::cout << "nothing to write\n";
  }
  return kOk;
}

}  // namespace

int cmd_recipes(Context& ctx, const ParsedArgs& a) {
  std::string sub = a.positional.empty() ? "" : a.positional[0];
  if (sub == "plan" && a.positional.size() == 1) return recipes_plan(ctx);
  if (sub == "render" && a.positional.size() == 1)
    return recipes_render(ctx, a.has("--write"), a.has("--force"));
  throw UsageError{"recipes takes plan or render"};
}

namespace {

// One repo's findings, those its doctor_disable turns off left out; `checked` counts its recipes.
std::vector<LintFinding> doctor_repo(const RepoConfig& repo, size_t& checked) {
  std::vector<LintFinding> found;
  RecipeScan scan = scan_recipes(repo.path, repo.recipes);
  if (!scan.error.empty())
    found.push_back({"scan", repo.path, 1, scan.error, "check the repo's path and recipes in the config"});
  const MatrixConfig matrix = repo.matrix.value_or(MatrixConfig{});
  LintRules rules;
  if (repo.matrix) {
    rules = {matrix.family, matrix.pname_prefix, matrix.gpu_archs, matrix.require, matrix.forbid};
    for (const Recipe& r : strays(matrix, scan.recipes))
      found.push_back({"stray", repo.path + "/" + r.file, 1,
                       "stray recipe: no axis of the matrix produces " + r.package,
                       "delete it, or add its axes to [repo.matrix]"});
  }
  std::vector<GroupedValue> undeclared_pins, undeclared_flags;
  for (const Recipe& r : scan.recipes) {
    auto text = read_text(fs::path(repo.path) / r.file);
    if (!text) continue;
    ++checked;
    std::string file = repo.path + "/" + r.file;
    RecipeExpectation expect = expectation_for(matrix, r.package);
    for (LintFinding& f : lint_recipe(file, r.package, *text, rules, expect)) found.push_back(std::move(f));
    if (expect.nixpkgs.empty())
      if (auto pin = find_nixpkgs_pin(*text))
        undeclared_pins.push_back({file, pin->line, expect.group, pin->rev.substr(0, 12)});
    if (std::string isa = parse_variant_name(r.package).isa.value_or("");
        !isa.empty() && !expect.declared_isa_flags)
      if (auto flags = find_cpu_flags(*text)) {
        std::vector<std::string> sorted = flags->flags;  // the same flags in another order are the same
        std::sort(sorted.begin(), sorted.end());
        undeclared_flags.push_back({file, flags->line, isa, "[ " + join(sorted, " ") + " ]"});
      }
  }
  for (LintFinding& f : lint_splits("pin-split", "pin nixpkgs", "nixpkgs", undeclared_pins))
    found.push_back(std::move(f));
  for (LintFinding& f : lint_splits("flags-split", "have cpuFlags", "isa_flags", undeclared_flags))
    found.push_back(std::move(f));
  std::erase_if(found,
                [&](const LintFinding& f) { return std::ranges::count(repo.doctor_disable, f.rule) > 0; });
  return found;
}

using Groups = std::vector<std::pair<const LintRule*, std::vector<const LintFinding*>>>;

void print_doctor_json(const Groups& groups, size_t checked, const json& disabled) {
  json out = json::array(), summary = json::array();
  for (const auto& [rule, of] : groups) {
    summary.push_back({{"rule", rule->name}, {"title", rule->title}, {"count", of.size()}});
    for (const LintFinding* f : of)
      out.push_back({{"rule", f->rule},
                     {"file", f->file},
                     {"line", f->line},
                     {"problem", f->problem},
                     {"hint", f->hint}});
  }
  std::cout
      << json{{"findings", out}, {"groups", summary}, {"checked", checked}, {"disabled", disabled}}.dump(2)
      << "\n";
}

void print_doctor_text(const Groups& groups, size_t findings, size_t checked, const json& disabled) {
  constexpr size_t kShown = 10;
  for (const auto& [rule, of] : groups) {
    std::cout << rule->name << ": " << rule->title << " (" << of.size() << ")\n";
    for (size_t i = 0; i < of.size() && i < kShown; ++i) std::cout << "  " << of[i]->to_string() << "\n";
    if (of.size() > kShown)
      std::cout << "  … and " << of.size() - kShown << " more (ptbuild doctor --json lists all)\n";
  }
  std::cout << (findings == 0 ? "no problems"
                              : std::to_string(findings) + " problem(s) of " + std::to_string(groups.size()) +
                                    " kind(s)")
            << " in " << checked << " recipe(s)";
  for (const auto& [repo, rules] : disabled.items())
    std::cout << "; not checked in " << repo << ": " << join(rules.get<std::vector<std::string>>(), ", ");
  std::cout << "\n";
}

}  // namespace

int cmd_doctor(Context& ctx, const ParsedArgs&) {
  std::vector<LintFinding> findings;
  size_t checked = 0;
  json disabled = json::object();
  for (const RepoConfig& repo : ctx.config().repos) {
    for (LintFinding& f : doctor_repo(repo, checked)) findings.push_back(std::move(f));
    if (!repo.doctor_disable.empty()) disabled[repo.name] = repo.doctor_disable;
  }
  // Grouped by rule, in the rules' order: 127 findings of one kind read as one problem.
  Groups groups;
  for (const LintRule& rule : lint_rules()) {
    std::vector<const LintFinding*> of;
    for (const LintFinding& f : findings)
      if (f.rule == rule.name) of.push_back(&f);
    if (!of.empty()) groups.emplace_back(&rule, std::move(of));
  }
  if (ctx.json)
    print_doctor_json(groups, checked, disabled);
  else
    print_doctor_text(groups, findings.size(), checked, disabled);
  return findings.empty() ? kOk : kWorkFailed;
}

}  // namespace ptbuild::client
