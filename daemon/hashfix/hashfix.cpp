#include "daemon/hashfix/hashfix.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/text.h"

#include "core/hash_locate.h"
#include "daemon/command.h"
#include "local/files.h"

namespace ptbuild {

namespace fs = std::filesystem;

namespace {

struct RecipeFile {
  std::string path;  // relative to the repo
  std::string text;
};

// The git-tracked .nix files of the repo that really lie inside it (no symlinks out of it).
std::vector<RecipeFile> tracked_nix_files(const std::string& repo, std::string& error) {
  CommandResult ls = run_command({"git", "-C", repo, "ls-files", "-z", "--", "*.nix"}, repo);
  if (!ls.ok()) {
    error = "cannot list the git-tracked files of " + repo + ": " + ls.err;
    return {};
  }
  std::error_code ec;
  fs::path root = fs::canonical(repo, ec);
  std::vector<RecipeFile> files;
  std::istringstream names(ls.out);
  std::string name;
  while (std::getline(names, name, '\0')) {
    fs::path p = fs::path(repo) / name;
    if (!fs::is_regular_file(fs::symlink_status(p, ec))) continue;
    fs::path real = fs::canonical(p, ec);
    if (ec || std::mismatch(root.begin(), root.end(), real.begin(), real.end()).first != root.end()) continue;
    if (std::optional<std::string> text = read_file(p.string())) files.push_back({name, std::move(*text)});
  }
  return files;
}

// What tells the failing derivation's source apart: from `nix show-derivation` where there is a
// .drv, else from what the log said.
SourceClues clues_for(const HashfixOptions& o, const HashMismatch& m) {
  SourceClues clues;
  auto add_url = [&](const std::string& url) {
    if (url.empty()) return;
    clues.strong.push_back(url);
    static const std::set<std::string> kCommon{"https:",   "http:",    "file:", "github.com", "archive",
                                               "releases", "download", "refs",  "tags",       "heads",
                                               "tar.gz",   "raw",      "commit"};
    std::istringstream parts(url);
    std::string part;
    while (std::getline(parts, part, '/'))
      if (part.size() >= 3 && !kCommon.count(part)) clues.weak.push_back(part);
  };
  add_url(m.url);
  if (m.drv.ends_with(".drv")) {
    CommandResult show =
        run_command({o.nix_program, "--extra-experimental-features", "nix-command", "show-derivation", m.drv},
                    o.repo_path, std::chrono::seconds(30));
    auto j = nlohmann::json::parse(show.out, nullptr, false);
    if (show.ok() && j.is_object() && !j.empty()) {
      const nlohmann::json& env = j.begin()->value("env", nlohmann::json::object());
      for (const char* key : {"url", "urls"}) {
        std::istringstream urls(env.value(key, ""));
        std::string url;
        while (urls >> url) add_url(url);
      }
      if (std::string rev = env.value("rev", ""); !rev.empty()) clues.strong.push_back(rev);
      for (const char* key : {"name", "pname", "version"})
        if (std::string v = env.value(key, ""); !v.empty() && v != "source") clues.weak.push_back(v);
    }
  }
  // "/nix/store/<hash>-<name>[.drv]": the name, unless it is the generic "source".
  if (size_t dash = m.drv.find('-'); dash != std::string::npos && m.drv.starts_with("/nix/store/")) {
    std::string name = m.drv.substr(dash + 1);
    if (name.ends_with(".drv")) name.resize(name.size() - 4);
    if (name != "source") clues.weak.push_back(name);
  }
  return clues;
}

std::string short_drv(const std::string& drv) {
  size_t dash = drv.find('-');
  return drv.starts_with("/nix/store/") && dash != std::string::npos ? drv.substr(dash + 1) : drv;
}

}  // namespace

namespace {

using Edits =
    std::map<size_t, std::map<size_t, std::pair<HashOccurrence, std::string>>>;  // file -> offset -> edit
using Targets = std::vector<std::pair<size_t, HashOccurrence>>;                  // (file index, occurrence)

// Where one mismatch is to be repaired, or why it cannot be.
struct MismatchTargets {
  Targets targets;
  std::string error;
};

// A fake hash may stand for many sources: only those that belong to this one, by the clues near
// them (its url, rev or name). The same source in many recipes is repaired everywhere; two
// equally near fakes in one file cannot be told apart.
MismatchTargets fake_hash_targets(const HashfixOptions& o, const HashMismatch& m,
                                  const std::vector<RecipeFile>& files, Edits& edits) {
  MismatchTargets out;
  SourceClues clues = clues_for(o, m);
  std::vector<std::tuple<int, size_t, HashOccurrence>> scored;
  size_t fakes = 0;
  for (size_t f = 0; f < files.size(); ++f)
    for (const HashOccurrence& occ : find_fake_hashes(files[f].text)) {
      if (edits[f].count(occ.offset)) continue;  // taken by another mismatch of this round
      ++fakes;
      if (int d = clue_distance(files[f].text, occ, clues); d >= 0) scored.emplace_back(d, f, occ);
    }
  if (scored.empty() && fakes == 1) {
    for (size_t f = 0; f < files.size(); ++f)
      for (const HashOccurrence& occ : find_fake_hashes(files[f].text))
        if (!edits[f].count(occ.offset)) out.targets.emplace_back(f, occ);
    return out;
  }
  if (scored.empty()) {
    if (fakes > 1)
      out.error = "the repo has " + std::to_string(fakes) + " fake hashes and none could be tied to " +
                  short_drv(m.drv) + " (by its url, rev or name)";
    return out;
  }
  int best = std::get<0>(*std::min_element(scored.begin(), scored.end(), [](const auto& x, const auto& y) {
    return std::get<0>(x) < std::get<0>(y);
  }));
  std::map<size_t, int> per_file;
  for (const auto& [d, f, occ] : scored)
    if (d == best) {
      out.targets.emplace_back(f, occ);
      ++per_file[f];
    }
  for (const auto& [f, n] : per_file)
    if (n > 1) {
      out.error = "cannot tell which fake hash in " + files[f].path + " belongs to " + short_drv(m.drv) +
                  ": put the source's url or rev next to its hash";
      break;
    }
  return out;
}

// A real hash pinned in several files is one source used by many recipes: repair them all.
Targets real_hash_targets(const Hash& specified, const std::vector<RecipeFile>& files) {
  Targets out;
  for (size_t f = 0; f < files.size(); ++f)
    for (const HashOccurrence& occ : find_hash(files[f].text, specified)) out.emplace_back(f, occ);
  return out;
}

// Writes every file's edits, each whole or not at all; the files changed, or the error.
std::string write_edits(const HashfixOptions& o, const std::vector<RecipeFile>& files, const Edits& edits,
                        std::vector<std::string>& changed) {
  for (const auto& [f, by_offset] : edits) {
    if (by_offset.empty()) continue;
    std::vector<std::pair<HashOccurrence, std::string>> list;
    for (const auto& [_, e] : by_offset) list.push_back(e);
    std::string path = (fs::path(o.repo_path) / files[f].path).string();
    if (std::string err = write_file_atomically(path, apply_replacements(files[f].text, list)); !err.empty())
      return err;
    changed.push_back(files[f].path);
  }
  return "";
}

// hashfix.commit: one commit of the repaired files, saying what changed; how it went, for the message.
std::string commit_repair(const HashfixOptions& o, const RepairResult& result,
                          const std::vector<std::string>& changed) {
  std::string body;
  for (const HashFix& fx : result.fixes)
    body += fx.file + ":" + std::to_string(fx.line) + ": " + fx.old_text + " -> " + fx.new_text + "\n";
  std::vector<std::string> argv{"git", "-C", o.repo_path};
  if (!run_command({"git", "-C", o.repo_path, "config", "user.email"}, o.repo_path).ok())
    argv.insert(argv.end(), {"-c", "user.name=ptbuild", "-c", "user.email=ptbuild@localhost"});
  argv.insert(
      argv.end(),
      {"commit", "-q", "-m",
       "ptbuild: repair fixed-output hash of " + short_drv(result.fixes.front().drv) + "\n\n" + body, "--"});
  argv.insert(argv.end(), changed.begin(), changed.end());
  CommandResult commit = run_command(argv, o.repo_path);
  return commit.ok() ? " and committed them" : " (git commit failed: " + commit.err + ")";
}

nlohmann::json journal_json(const HashfixOptions& o, const std::vector<HashFix>& fixes) {
  nlohmann::json list = nlohmann::json::array();
  for (const HashFix& fx : fixes)
    list.push_back(
        {{"drv", fx.drv}, {"file", fx.file}, {"line", fx.line}, {"old", fx.old_text}, {"new", fx.new_text}});
  return {{"job", o.job_id},
          {"variant", o.variant},
          {"repo", o.repo_path},
          {"commit", o.commit},
          {"fixes", list}};
}

void remove_journal(const HashfixOptions& o) {
  std::error_code ignored;
  if (!o.journal.empty()) fs::remove(o.journal, ignored);
}

// One try: `changed_underfoot` when a recipe changed between reading and writing it (an editor,
// a git pull): nothing was written then, and the caller tries again on the new text.
RepairResult repair_once(const HashfixOptions& o, const std::vector<HashMismatch>& mismatches,
                         bool& changed_underfoot) {
  RepairResult result;
  std::vector<RecipeFile> files = tracked_nix_files(o.repo_path, result.message);
  if (!result.message.empty()) return result;
  Edits edits;  // keyed by offset so that one occurrence is edited once
  int already = 0;
  for (const HashMismatch& m : mismatches) {
    auto specified = parse_hash(m.specified);
    auto got = parse_hash(m.got);
    if (!got) {
      result.message = "cannot read the hash Nix got for " + short_drv(m.drv) + ": '" + m.got + "'";
      return result;
    }
    MismatchTargets found = specified && !specified->hash.is_zero()
                                ? MismatchTargets{real_hash_targets(specified->hash, files), ""}
                                : fake_hash_targets(o, m, files, edits);
    if (!found.error.empty()) {
      result.message = found.error;
      return result;
    }
    if (found.targets.empty()) {
      bool got_written = std::any_of(files.begin(), files.end(), [&](const RecipeFile& rf) {
        return !find_hash(rf.text, got->hash).empty();
      });
      if (got_written) {
        ++already;  // another job repaired it a moment ago
        continue;
      }
      result.message =
          "the hash " + m.specified + " of " + short_drv(m.drv) +
          " is not in any git-tracked .nix file of the repo (it may live in nixpkgs or be computed); "
          "Nix got " +
          m.got;
      return result;
    }
    for (const auto& [f, occ] : found.targets) {
      edits[f][occ.offset] = {occ, replacement_for(occ, got->hash)};
      result.fixes.push_back({m.drv, files[f].path, occ.line, occ.text, replacement_for(occ, got->hash)});
    }
  }
  // Read again just before replacing: an edit made while this repair ran is never overwritten.
  for (const auto& [f, by_offset] : edits)
    if (!by_offset.empty() && read_file((fs::path(o.repo_path) / files[f].path).string()) != files[f].text) {
      changed_underfoot = true;
      return {};
    }
  if (!o.journal.empty() && !result.fixes.empty()) {
    std::error_code ignored;
    fs::create_directories(fs::path(o.journal).parent_path(), ignored);
    if (std::string err = write_file_atomically(o.journal, journal_json(o, result.fixes).dump(2) + "\n");
        !err.empty()) {
      result.message = "cannot write the repair's journal, so nothing was repaired: " + err;
      result.fixes.clear();
      return result;
    }
  }
  std::vector<std::string> changed;
  if (std::string err = write_edits(o, files, edits, changed); !err.empty()) {
    remove_journal(o);  // each file is written whole or not at all: what was written stays, and is
                        // found again by the next build as already repaired
    result.message = err;
    result.fixes.clear();
    return result;
  }
  if (changed.empty()) {
    remove_journal(o);
    result.outcome = already > 0 ? RepairResult::Outcome::already_repaired : RepairResult::Outcome::failed;
    result.message = already > 0 ? "already repaired by another job" : "no mismatch to repair";
    return result;
  }
  result.outcome = RepairResult::Outcome::repaired;
  result.message = "repaired " + std::to_string(result.fixes.size()) + " hash" +
                   (result.fixes.size() == 1 ? "" : "es") + " in " + std::to_string(changed.size()) +
                   " file" + (changed.size() == 1 ? "" : "s");
  if (o.commit) result.message += commit_repair(o, result, changed);
  return result;
}

}  // namespace

RepairResult repair_hashes(const HashfixOptions& o, const std::vector<HashMismatch>& mismatches) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    bool changed_underfoot = false;
    RepairResult r = repair_once(o, mismatches, changed_underfoot);
    if (!changed_underfoot) return r;
  }
  RepairResult r;
  r.message = "the recipes kept changing while their hashes were repaired; nothing was written";
  return r;
}

std::vector<InterruptedRepair> finish_interrupted_repairs(const std::string& journal_dir) {
  std::vector<InterruptedRepair> out;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(journal_dir, ec)) {
    if (entry.path().extension() != ".json") continue;
    InterruptedRepair r;
    r.journal = entry.path().string();
    nlohmann::json j = nlohmann::json::parse(read_file(r.journal).value_or(""), nullptr, false);
    if (!j.is_object() || !j.contains("fixes") || !j["fixes"].is_array()) {
      r.message =
          "unreadable, removed (it was written whole, so a kill cut it before any recipe was touched)";
      out.push_back(std::move(r));
      continue;
    }
    r.job_id = j.value("job", int64_t{0});
    r.variant = j.value("variant", "");
    HashfixOptions o{j.value("repo", ""), "nix", j.value("commit", false)};
    RepairResult written;
    std::set<std::string> files;
    for (const nlohmann::json& f : j["fixes"]) {
      HashFix fx{f.value("drv", ""), f.value("file", ""), f.value("line", 0), f.value("old", ""),
                 f.value("new", "")};
      std::string text = read_file((fs::path(o.repo_path) / fx.file).string()).value_or("");
      std::vector<std::string_view> lines = split_lines(text);
      bool in_place = fx.line >= 1 && static_cast<size_t>(fx.line) <= lines.size() &&
                      lines[fx.line - 1].find(fx.new_text) != std::string_view::npos;
      if (!in_place) continue;  // stopped before this file was replaced: the next build meets it again
      written.fixes.push_back(fx);
      files.insert(fx.file);
    }
    r.written = written.fixes;
    r.message = std::to_string(r.written.size()) + " of " + std::to_string(j["fixes"].size()) +
                " fixes were in the recipes";
    if (o.commit && !files.empty()) {
      std::vector<std::string> changed(files.begin(), files.end());
      std::vector<std::string> argv{"git", "-C", o.repo_path, "status", "--porcelain", "--"};
      argv.insert(argv.end(), changed.begin(), changed.end());
      CommandResult status = run_command(argv, o.repo_path);
      if (status.ok() && !trim(status.out).empty())
        r.message += commit_repair(o, written, changed);
      else
        r.message += status.ok() ? " and committed" : " (git status failed: " + status.err + ")";
    }
    out.push_back(std::move(r));
  }
  return out;
}

SourceInputs fixed_output_inputs(const std::string& nix, const std::string& recipe_path,
                                 const std::string& cwd) {
  SourceInputs out;
  // Evaluating drvPath writes the derivation (and its closure's) into the store, as
  // `nix build -f` would before building.
  CommandResult drv = run_command(
      {nix, "--extra-experimental-features", "nix-command", "eval", "--raw", "-f", recipe_path, "drvPath"},
      cwd, std::chrono::minutes(5));
  std::string path(trim(drv.out));
  if (!drv.ok() || !path.starts_with("/nix/store/")) {
    out.error = "it does not evaluate alone: " + std::string(trim(drv.err)).substr(0, 300);
    return out;
  }
  out.derivation = path;
  CommandResult show =
      run_command({nix, "--extra-experimental-features", "nix-command", "show-derivation", "-r", path}, cwd,
                  std::chrono::minutes(5));
  nlohmann::json closure = nlohmann::json::parse(show.out, nullptr, false);
  if (!show.ok() || !closure.is_object()) {
    out.error = "nix show-derivation failed: " + std::string(trim(show.err)).substr(0, 300);
    return out;
  }
  for (const auto& [drv_path, d] : closure.items()) {
    const nlohmann::json& outputs = d.value("outputs", nlohmann::json::object());
    for (const auto& [name, o] : outputs.items())
      if (o.is_object() && o.contains("hash")) {
        out.drvs.push_back(drv_path);
        break;
      }
  }
  return out;
}

}  // namespace ptbuild
