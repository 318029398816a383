// The offline commands (no daemon needed): `ptbuild recipes plan|render` keeps a repo's recipes
// in line with [repo.matrix]; `ptbuild doctor` lints every recipe.

#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "client/commands.h"
#include "core/recipe_lint.h"
#include "core/recipe_matrix.h"
#include "core/variant.h"
#include "local/files.h"
#include "local/recipes.h"

namespace ptbuild::client {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::optional<std::string> read_text(const fs::path& p) { return read_file(p.string()); }

// Written next to its destination and renamed over it: a reader never sees half a recipe.
void write_atomically(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  if (std::string err = write_file_atomically(path.string(), text); !err.empty()) throw UsageError{err};
}

struct RepoPlan {
  const RepoConfig* repo;
  std::vector<std::pair<PlannedRecipe, std::string>> missing;  // recipe, rendered text
  std::vector<std::pair<PlannedRecipe, std::string>> drifted;  // recipe, rendered text
  std::vector<std::string> stray;                              // packages no axis produces
  std::map<std::string, std::string> files;                    // package -> recipe file
  int in_line = 0;
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
  RepoPlan plan{&repo, {}, {}, {}, {}, 0};
  RecipeScan scan = scan_recipes(repo.path, repo.recipes);
  for (const Recipe& r : scan.recipes) plan.files[r.package] = r.file;
  std::map<RecipeKind, std::string> templates;
  for (const PlannedRecipe& r : expand_matrix(m)) {
    auto t = m.templates.find(r.kind);
    if (t == m.templates.end())
      throw UsageError{"repo '" + repo.name + "': repo.matrix.templates has no " + std::string(to_string(r.kind)) +
                       " template, needed for " + r.name};
    if (!templates.count(r.kind)) {
      auto text = read_text(fs::path(repo.path) / t->second);
      if (!text) throw UsageError{"repo '" + repo.name + "': cannot read template " + (fs::path(repo.path) / t->second).string()};
      templates[r.kind] = *text;
    }
    std::string rendered = render_recipe(templates[r.kind], t->second, r);
    auto file = plan.files.find(r.name);
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
  if (plans.empty()) throw UsageError{"no [repo.matrix] in the config (" + ctx.config().source + "): nothing to plan"};
  return plans;
}

std::string recipe_path(const RepoConfig& repo, const std::string& package) {
  return repo.recipes + "/" + package + ".nix";
}

int recipes_plan(Context& ctx) {
  json out = json::array();
  for (const RepoPlan& p : plan_all(ctx)) {
    json repo{{"repo", p.repo->name}, {"in_line", p.in_line}, {"missing", json::array()}, {"drifted", json::array()},
              {"stray", p.stray}};
    for (const auto& [r, _] : p.missing) repo["missing"].push_back(r.name);
    for (const auto& [r, _] : p.drifted) repo["drifted"].push_back(r.name);
    out.push_back(repo);
    if (ctx.json) continue;
    std::cout << "repo " << p.repo->name << ": " << p.in_line << " in line with the templates, " << p.missing.size()
              << " missing, " << p.drifted.size() << " drifted, " << p.stray.size() << " stray\n";
    for (const auto& [r, _] : p.missing) std::cout << "  missing  " << recipe_path(*p.repo, r.name) << "  (" << to_string(r.kind) << ")\n";
    for (const auto& [r, _] : p.drifted)
      std::cout << "  drifted  " << p.files.at(r.name) << "  (differs from its " << to_string(r.kind) << " template"
                << (is_generated(read_text(fs::path(p.repo->path) / p.files.at(r.name)).value_or("")) ? "" : "; not generated")
                << ")\n";
    for (const std::string& s : p.stray) std::cout << "  stray    " << p.files.at(s) << "  (no axis of the matrix produces it)\n";
  }
  if (ctx.json) std::cout << json{{"repos", out}}.dump(2) << "\n";
  return kOk;
}

int recipes_render(Context& ctx, bool write, bool force) {
  json created = json::array(), rewritten = json::array(), kept = json::array();
  for (const RepoPlan& p : plan_all(ctx)) {
    for (const auto& [r, text] : p.missing) {
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
        kept.push_back({{"file", file.string()}, {"why", !write ? "differs from its template (rewrite with --write)"
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
  for (const auto& k : kept) std::cout << "left as is " << k["file"].get<std::string>() << ": " << k["why"].get<std::string>() << "\n";
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
  if (sub == "render" && a.positional.size() == 1) return recipes_render(ctx, a.has("--write"), a.has("--force"));
  throw UsageError{"recipes takes plan or render"};
}

int cmd_doctor(Context& ctx, const ParsedArgs&) {
  std::vector<LintFinding> findings;
  size_t checked = 0;
  for (const RepoConfig& repo : ctx.config().repos) {
    RecipeScan scan = scan_recipes(repo.path, repo.recipes);
    if (!scan.error.empty()) findings.push_back({repo.path, 1, scan.error, "check the repo's path and recipes in the config"});
    LintRules rules;
    if (repo.matrix) {
      rules = {repo.matrix->family, repo.matrix->pname_prefix, repo.matrix->gpu_archs, repo.matrix->require, repo.matrix->forbid};
      for (const Recipe& r : strays(*repo.matrix, scan.recipes))
        findings.push_back({repo.path + "/" + r.file, 1, "stray recipe: no axis of the matrix produces " + r.package,
                            "delete it, or add its axes to [repo.matrix]"});
    }
    std::vector<std::pair<std::string, std::string>> texts;
    for (const Recipe& r : scan.recipes) {
      auto text = read_text(fs::path(repo.path) / r.file);
      if (!text) continue;
      ++checked;
      std::string file = repo.path + "/" + r.file;
      for (LintFinding& f : lint_recipe(file, r.package, *text, rules)) findings.push_back(std::move(f));
      texts.emplace_back(file, *text);
    }
    for (LintFinding& f : lint_pins(texts)) findings.push_back(std::move(f));
  }
  if (ctx.json) {
    json out = json::array();
    for (const LintFinding& f : findings)
      out.push_back({{"file", f.file}, {"line", f.line}, {"problem", f.problem}, {"hint", f.hint}});
    std::cout << json{{"findings", out}, {"checked", checked}}.dump(2) << "\n";
  } else {
    for (const LintFinding& f : findings) std::cout << f.to_string() << "\n";
    std::cout << (findings.empty() ? "no problems" : std::to_string(findings.size()) + " problem(s)") << " in " << checked
              << " recipe(s)\n";
  }
  return findings.empty() ? kOk : kWorkFailed;
}

}  // namespace ptbuild::client
