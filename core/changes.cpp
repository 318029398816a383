#include "core/changes.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

namespace ptbuild {

using json = nlohmann::json;

DrvName parse_drv_name(std::string_view name) {
  for (size_t i = 0; i + 1 < name.size(); ++i)
    if (name[i] == '-' && std::isdigit(static_cast<unsigned char>(name[i + 1])))
      return {std::string(name.substr(0, i)), std::string(name.substr(i + 1))};
  return {std::string(name), ""};
}

std::string store_path_name(std::string_view path) {
  if (size_t slash = path.rfind('/'); slash != std::string_view::npos) path.remove_prefix(slash + 1);
  if (size_t dash = path.find('-'); dash == 32) path.remove_prefix(33);  // the hash
  if (path.ends_with(".drv")) path.remove_suffix(4);
  return std::string(path);
}

namespace {

const json& field(const json& j, const char* key) {
  static const json kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string text_of(const json& j) {
  return j.is_string() ? j.get<std::string>() : std::string();
}

std::string name_of(const std::string& drv_path, const json& drv) {
  std::string name = text_of(field(field(drv, "env"), "name"));
  return name.empty() ? store_path_name(drv_path) : name;
}

// A fixed-output derivation (a download): its expected hash, "" for any other.
std::string fixed_hash(const json& drv) {
  for (const auto& [output, o] : field(drv, "outputs").items())
    if (o.is_object() && o.contains("hash")) return text_of(o["hash"]);
  return "";
}

std::string url_of(const json& drv) {
  const json& env = field(drv, "env");
  std::string url = text_of(field(env, "url"));
  if (url.empty()) url = text_of(field(env, "urls"));
  return url.substr(0, url.find(' '));
}

// Store paths' hashes say nothing a change of inputs does not already say.
std::string without_store_hashes(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  constexpr std::string_view kStore = "/nix/store/";
  size_t at = 0;
  for (size_t hit; (hit = value.find(kStore, at)) != std::string_view::npos;) {
    out.append(value.substr(at, hit - at)).append(kStore);
    at = hit + kStore.size();
    if (value.size() - at > 32 && value[at + 32] == '-') {
      out += "…";
      at += 32;
    }
  }
  out.append(value.substr(at));
  return out;
}

std::vector<std::string> pieces(const std::string& value) {
  std::vector<std::string> out;
  bool lines = value.find('\n') != std::string::npos;
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = lines ? value.find('\n', start) : value.find_first_of(" \t", start);
    if (end == std::string::npos) end = value.size();
    std::string piece = value.substr(start, end - start);
    if (lines) {
      size_t b = piece.find_first_not_of(" \t");
      piece = b == std::string::npos ? "" : piece.substr(b, piece.find_last_not_of(" \t") - b + 1);
    }
    // A bare store path is an input: its change is the inputs' news.
    if (!piece.empty() && !piece.starts_with("/nix/store/")) out.push_back(std::move(piece));
    start = end + 1;
  }
  return out;
}

// The pieces of `a` that `b` lacks, in a's order, each as often as it is missing.
std::vector<std::string> missing_from(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::map<std::string, int> left;
  for (const std::string& p : b) ++left[p];
  std::vector<std::string> out;
  for (const std::string& p : a)
    if (left[p]-- <= 0) out.push_back(p);
  return out;
}

std::string joined(const std::set<std::string>& items, const char* between = ", ") {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : between) + s;
  return out;
}

struct Closure {
  std::map<std::string, std::set<std::string>> versions;     // name -> versions (no downloads)
  std::set<std::string> paths;                               // of the derivations
  std::map<std::string, std::string> sources;                // name + " " + url -> hash
  std::map<std::string, std::set<std::string>> plain_files;  // inputSrcs: name -> paths
};

Closure read_closure(const json& closure, const std::string& top) {
  Closure c;
  if (!closure.is_object()) return c;
  for (const auto& [path, drv] : closure.items()) {
    c.paths.insert(path);
    std::string name = name_of(path, drv);
    if (std::string hash = fixed_hash(drv); !hash.empty()) {
      c.sources[name + " " + url_of(drv)] = hash;
    } else if (path != top) {
      DrvName n = parse_drv_name(name);
      c.versions[n.name].insert(n.version);
    }
    for (const json& src : field(drv, "inputSrcs"))
      if (src.is_string())
        c.plain_files[store_path_name(src.get<std::string>())].insert(src.get<std::string>());
  }
  return c;
}

}  // namespace

DerivationDiff diff_derivations(const json& before, const std::string& before_drv, const json& after,
                                const std::string& after_drv) {
  DerivationDiff d;
  d.same = before_drv == after_drv;
  if (d.same) return d;
  Closure a = read_closure(before, before_drv), b = read_closure(after, after_drv);

  std::vector<DerivationDiff::Version> added, removed;
  for (const auto& [name, versions] : b.versions) {
    auto old = a.versions.find(name);
    if (old == a.versions.end()) {
      added.push_back({"added", name, "", joined(versions)});
    } else if (old->second != versions) {
      std::set<std::string> gone, come;
      std::ranges::set_difference(old->second, versions, std::inserter(gone, gone.end()));
      std::ranges::set_difference(versions, old->second, std::inserter(come, come.end()));
      d.versions.push_back({"moved", name, joined(gone), joined(come)});
    }
  }
  for (const auto& [name, versions] : a.versions)
    if (!b.versions.contains(name)) removed.push_back({"removed", name, joined(versions), ""});
  d.versions.insert(d.versions.end(), added.begin(), added.end());
  d.versions.insert(d.versions.end(), removed.begin(), removed.end());

  if (after.is_object())
    for (const auto& [path, drv] : after.items()) {
      if (path == after_drv || a.paths.contains(path) || !fixed_hash(drv).empty()) continue;
      DrvName n = parse_drv_name(name_of(path, drv));
      auto old = a.versions.find(n.name);
      if (old != a.versions.end() && old->second.contains(n.version)) ++d.rebuilt;
    }

  for (const auto& [key, hash] : b.sources)
    if (auto old = a.sources.find(key); old != a.sources.end() && old->second != hash) {
      size_t space = key.find(' ');
      d.sources.push_back({key.substr(0, space), key.substr(space + 1), old->second, hash});
    }
  for (const auto& [name, paths] : b.plain_files)
    if (auto old = a.plain_files.find(name); old != a.plain_files.end() && old->second != paths)
      d.files.push_back(name);

  const json& env_before = field(field(before, before_drv.c_str()), "env");
  const json& env_after = field(field(after, after_drv.c_str()), "env");
  const json& outputs = field(field(after, after_drv.c_str()), "outputs");
  std::set<std::string> names;
  for (const json* env : {&env_before, &env_after})
    if (env->is_object())
      for (const auto& [key, value] : env->items()) names.insert(key);
  for (const std::string& name : names) {
    if (outputs.is_object() && outputs.contains(name)) continue;  // an output's own path
    std::string x = without_store_hashes(text_of(field(env_before, name.c_str())));
    std::string y = without_store_hashes(text_of(field(env_after, name.c_str())));
    if (x == y) continue;
    std::vector<std::string> px = pieces(x), py = pieces(y);
    DerivationDiff::Variable v{name, missing_from(py, px), missing_from(px, py)};
    if (!v.added.empty() || !v.removed.empty()) d.variables.push_back(std::move(v));
  }
  return d;
}

namespace {

std::string short_sha(const std::string& sha) {
  return sha.substr(0, 7);
}

template <class T, class F>
std::string listed(const std::vector<T>& items, size_t most, F show) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < most; ++i) out += (i ? ", " : "") + show(items[i]);
  if (items.size() > most) out += " (+" + std::to_string(items.size() - most) + " more)";
  return out;
}

std::string version_text(const DerivationDiff::Version& v) {
  if (v.change == "added") return "+" + v.name + (v.after.empty() ? "" : " " + v.after);
  if (v.change == "removed") return "-" + v.name + (v.before.empty() ? "" : " " + v.before);
  return v.name + " " + v.before + " → " + v.after;
}

}  // namespace

std::vector<std::string> summarize(const Changes& c, size_t most) {
  std::vector<std::string> out;
  if (!c.since) return {"no earlier good build of " + c.variant + " to compare with"};
  std::string since = "#" + std::to_string(*c.since);
  if (!c.derivation) {
    if (!c.derivation_note.empty()) out.push_back("derivation: " + c.derivation_note);
  } else if (c.derivation->same) {
    out.push_back("the derivation is " + since +
                  "'s: nothing it is built from changed (the machine, the network or chance did)");
  } else {
    const DerivationDiff& d = *c.derivation;
    // Versions that moved, before inputs that came or went: a version skew is read here first.
    if (!d.versions.empty()) out.push_back("inputs: " + listed(d.versions, 3, version_text));
    if (!d.sources.empty())
      out.push_back("sources: " + listed(d.sources, 2, [](const DerivationDiff::Source& s) {
                      return s.name + " hash " + s.before + " → " + s.after;
                    }));
    if (!d.variables.empty())
      out.push_back("flags: " + listed(d.variables, 2, [](const DerivationDiff::Variable& v) {
                      std::string t = v.name + ":";
                      for (size_t i = 0; i < v.added.size() && i < 3; ++i) t += " +" + v.added[i];
                      for (size_t i = 0; i < v.removed.size() && i < 3; ++i) t += " -" + v.removed[i];
                      return t;
                    }));
    if (!d.files.empty())
      out.push_back("files: " + listed(d.files, 3, [](const std::string& f) { return f; }) + " changed");
    if (out.empty())
      out.push_back("the derivation differs from " + since + "'s only below its inputs (" +
                    std::to_string(d.rebuilt) + " rebuilt at the same version)");
  }
  if (!c.commits.empty()) {
    const RepoCommit& last = c.commits.back();
    std::string files = listed(last.files, 2, [](const std::string& f) { return f; });
    out.push_back(c.commits.size() == 1
                      ? "commit " + short_sha(last.sha) + " \"" + last.subject + "\" changed " + files
                      : std::to_string(c.commits.size()) + " commits changed what it reads, the last " +
                            short_sha(last.sha) + " \"" + last.subject + "\" (" + files + ")");
  } else if (!c.commits_note.empty()) {
    out.push_back("commits: " + c.commits_note);
  } else if (c.since_commit && c.commit) {
    out.push_back("no commit since " + since + " touched the recipe or a file it reads");
  }
  for (const std::string& action : c.actions) out.push_back("ptbuild: " + action);
  if (out.size() > most) out.resize(most);
  return out;
}

json to_json(const Changes& c) {
  json j{{"job", c.job},
         {"variant", c.variant},
         {"since", c.since ? json(*c.since) : json(nullptr)},
         {"since_commit", c.since_commit ? json(*c.since_commit) : json(nullptr)},
         {"commit", c.commit ? json(*c.commit) : json(nullptr)},
         {"derivation", nullptr},
         {"derivation_note", c.derivation_note},
         {"commits", json::array()},
         {"commits_note", c.commits_note},
         {"actions", c.actions},
         {"summary", c.summary}};
  if (c.derivation) {
    const DerivationDiff& d = *c.derivation;
    json versions = json::array(), variables = json::array(), sources = json::array();
    for (const auto& v : d.versions)
      versions.push_back({{"change", v.change}, {"name", v.name}, {"before", v.before}, {"after", v.after}});
    for (const auto& v : d.variables)
      variables.push_back({{"name", v.name}, {"added", v.added}, {"removed", v.removed}});
    for (const auto& s : d.sources)
      sources.push_back({{"name", s.name}, {"url", s.url}, {"before", s.before}, {"after", s.after}});
    j["derivation"] = {{"same", d.same},     {"versions", versions}, {"variables", variables},
                       {"sources", sources}, {"files", d.files},     {"rebuilt", d.rebuilt}};
  }
  for (const RepoCommit& r : c.commits)
    j["commits"].push_back(
        {{"sha", r.sha}, {"subject", r.subject}, {"author", r.author}, {"at", r.at}, {"files", r.files}});
  return j;
}

Changes changes_from_json(const json& j) {
  auto optional_text = [&](const char* key) -> std::optional<std::string> {
    const json& v = j.at(key);
    return v.is_null() ? std::nullopt : std::optional(v.get<std::string>());
  };
  Changes c;
  c.job = j.at("job").get<int64_t>();
  c.variant = j.at("variant").get<std::string>();
  if (!j.at("since").is_null()) c.since = j.at("since").get<int64_t>();
  c.since_commit = optional_text("since_commit");
  c.commit = optional_text("commit");
  c.derivation_note = j.at("derivation_note").get<std::string>();
  c.commits_note = j.at("commits_note").get<std::string>();
  c.actions = j.at("actions").get<std::vector<std::string>>();
  c.summary = j.at("summary").get<std::vector<std::string>>();
  if (const json& d = j.at("derivation"); !d.is_null()) {
    DerivationDiff diff;
    diff.same = d.at("same").get<bool>();
    diff.rebuilt = d.at("rebuilt").get<int>();
    diff.files = d.at("files").get<std::vector<std::string>>();
    for (const json& v : d.at("versions"))
      diff.versions.push_back({v.at("change").get<std::string>(), v.at("name").get<std::string>(),
                               v.at("before").get<std::string>(), v.at("after").get<std::string>()});
    for (const json& v : d.at("variables"))
      diff.variables.push_back({v.at("name").get<std::string>(),
                                v.at("added").get<std::vector<std::string>>(),
                                v.at("removed").get<std::vector<std::string>>()});
    for (const json& s : d.at("sources"))
      diff.sources.push_back({s.at("name").get<std::string>(), s.at("url").get<std::string>(),
                              s.at("before").get<std::string>(), s.at("after").get<std::string>()});
    c.derivation = std::move(diff);
  }
  for (const json& r : j.at("commits"))
    c.commits.push_back({r.at("sha").get<std::string>(), r.at("subject").get<std::string>(),
                         r.at("author").get<std::string>(), r.at("at").get<std::string>(),
                         r.at("files").get<std::vector<std::string>>()});
  return c;
}

}  // namespace ptbuild
