#include "core/config.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "core/recipe_lint.h"
#include "core/text.h"
#include "core/web_route.h"

namespace ptbuild {
namespace {

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date or time";
  }
}

struct Failure {
  std::string message;
};

std::string absolute_to(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

// Reads the keys of one table, remembering which were read so the rest can be reported as unknown.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, const std::string& source)
      : table_(table), prefix_(std::move(prefix)), source_(source) {}

  void string(const char* key, std::string& out) {
    if (auto* n = take(key)) {
      if (!n->is_string()) fail(*n, key, "expected a string, got " + type_name(*n));
      out = n->as_string()->get();
      if (out.find('\0') != std::string::npos) fail(*n, key, "contains a NUL character");
    }
  }
  void listen(const char* key, std::string& out) {
    const toml::node* n = table_.get(key);
    string(key, out);
    if (!n || out.empty()) return;
    auto parsed = web::parse_listen(out);
    if (auto* err = std::get_if<std::string>(&parsed)) fail(*n, key, *err);
  }
  // A path that must name something: "" is refused (it would mean the current folder, or nothing).
  void path(const char* key, std::string& out) {
    if (auto* n = take(key)) {
      if (!n->is_string()) fail(*n, key, "expected a path, got " + type_name(*n));
      out = n->as_string()->get();
      if (out.empty()) fail(*n, key, "must not be empty");
      if (out.find('\0') != std::string::npos) fail(*n, key, "contains a NUL character");
    }
  }
  void integer(const char* key, int& out, long long min, long long max) {
    if (auto* n = take(key)) {
      if (!n->is_integer()) fail(*n, key, "expected an integer, got " + type_name(*n));
      long long v = n->as_integer()->get();
      if (v < min || v > max)
        fail(*n, key,
             "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                 std::to_string(v));
      out = static_cast<int>(v);
    }
  }
  void number(const char* key, double& out) {
    if (auto* n = take(key)) {
      if (!n->is_number()) fail(*n, key, "expected a number, got " + type_name(*n));
      out = n->is_integer() ? static_cast<double>(n->as_integer()->get()) : n->as_floating_point()->get();
      if (!(out > 0) || !std::isfinite(out)) fail(*n, key, "must be a finite number greater than 0");
    }
  }
  bool has(const char* key) const { return table_.contains(key); }
  // A key its caller reads itself.
  void skip(const char* key) { take(key); }
  void boolean(const char* key, bool& out) {
    if (auto* n = take(key)) {
      if (!n->is_boolean()) fail(*n, key, "expected true or false, got " + type_name(*n));
      out = n->as_boolean()->get();
    }
  }
  void duration(const char* key, Millis& out, Millis min = Millis{0}) {
    if (auto* n = take(key)) {
      if (!n->is_string()) fail(*n, key, "expected a duration string such as \"6h\", got " + type_name(*n));
      auto d = parse_duration(n->as_string()->get());
      if (!d)
        fail(*n, key,
             "bad duration \"" + n->as_string()->get() +
                 "\" (write a number and a unit: \"6h\", \"30m\", \"45s\", \"1h30m\")");
      if (*d < min)
        fail(*n, key, "must be at least " + format_duration(min) + ", got \"" + n->as_string()->get() + "\"");
      out = *d;
    }
  }
  // `empty` allows "" for "not set" (left as it was).
  bool size(const char* key, uint64_t& out, uint64_t min, bool empty = false) {
    if (auto* n = take(key)) {
      if (!n->is_string()) fail(*n, key, "expected a size string such as \"4GiB\", got " + type_name(*n));
      if (empty && n->as_string()->get().empty()) return false;
      auto v = parse_size(n->as_string()->get());
      if (!v)
        fail(*n, key,
             "bad size \"" + n->as_string()->get() + "\" (write a number and a unit: \"4GiB\", \"512MiB\")");
      if (*v < min) fail(*n, key, "must be at least " + format_size(min));
      out = *v;
      return true;
    }
    return false;
  }
  void strings(const char* key, std::vector<std::string>& out) {
    if (auto* n = take(key)) {
      if (!n->is_array()) fail(*n, key, "expected an array of strings, got " + type_name(*n));
      out.clear();
      for (const toml::node& item : *n->as_array()) {
        if (!item.is_string()) fail(item, key, "expected an array of strings, found " + type_name(item));
        if (item.as_string()->get().find('\0') != std::string::npos)
          fail(item, key, "contains a NUL character");
        out.push_back(item.as_string()->get());
      }
    }
  }
  void one_of(const char* key, std::string& out, std::initializer_list<const char*> allowed) {
    const toml::node* n = table_.get(key);
    string(key, out);
    if (!n) return;
    std::string list;
    for (const char* a : allowed) {
      if (out == a) return;
      list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
    }
    fail(*n, key, "must be one of " + list + ", got \"" + out + "\"");
  }
  // A sub-table, taken whole (its own reader checks its keys).
  const toml::table* table(const char* key) {
    const toml::node* n = take(key);
    if (!n) return nullptr;
    if (!n->is_table()) fail(*n, key, "expected a table, got " + type_name(*n));
    return n->as_table();
  }
  // { name = "value", … }
  void string_map(const char* key, std::map<std::string, std::string>& out) {
    if (const toml::table* t = table(key))
      for (auto&& [k, v] : *t) {
        if (!v.is_string())
          fail(v, key,
               "expected strings as values, got " + type_name(v) + " for '" + std::string(k.str()) + "'");
        out[std::string(k.str())] = v.as_string()->get();
      }
  }
  // { name = ["a", "b"], … }
  void strings_map(const char* key, std::map<std::string, std::vector<std::string>>& out) {
    if (const toml::table* t = table(key))
      for (auto&& [k, v] : *t) {
        std::vector<std::string> items;
        if (!v.is_array()) fail(v, key, "expected arrays of strings as values, got " + type_name(v));
        for (const toml::node& item : *v.as_array()) {
          if (!item.is_string())
            fail(item, key, "expected arrays of strings as values, found " + type_name(item));
          items.push_back(item.as_string()->get());
        }
        out[std::string(k.str())] = std::move(items);
      }
  }
  void reject_unknown() const {
    for (auto&& [k, v] : table_) {
      if (!read_.count(std::string(k.str()))) {
        std::string where = source_ + ":" + std::to_string(k.source().begin.line);
        throw Failure{where + ": unknown key '" + prefix_ + std::string(k.str()) + "'"};
      }
    }
  }
  // A value read that is wrong for reasons of its own: the error names the key and its line.
  [[noreturn]] void reject(const char* key, const std::string& what) const {
    if (const toml::node* n = table_.get(key)) fail(*n, key, what);
    throw Failure{source_ + ": " + prefix_ + key + ": " + what};
  }
  [[noreturn]] void fail(const toml::node& n, const char* key, const std::string& what) const {
    throw Failure{source_ + ":" + std::to_string(n.source().begin.line) + ": " + prefix_ + key + ": " + what};
  }

 private:
  const toml::node* take(const char* key) {
    read_.insert(key);
    return table_.get(key);
  }
  const toml::table& table_;
  std::string prefix_;
  const std::string& source_;
  std::set<std::string> read_;
};

// [repo.matrix] (see core/recipe_matrix.h). `cuda` is either one version ("13_0", whose
// architectures are the keys of gpu_archs) or [[repo.matrix.cuda]] tables, one per CUDA version.
MatrixConfig read_matrix(const toml::table& t, const std::string& source) {
  MatrixConfig m;
  TableReader r(t, "repo.matrix.", source);
  auto where = [&](const toml::node& n) {
    return source + ":" + std::to_string(n.source().begin.line) + ": repo.matrix.";
  };
  r.string("family", m.family);
  r.string("python", m.python);
  r.string("pname_prefix", m.pname_prefix);
  r.string("nixpkgs", m.nixpkgs);
  r.string_map("gpu_archs", m.gpu_archs);
  r.strings_map("isa_flags", m.isa_flags);
  r.strings("x86_isas", m.x86_isas);
  if (r.has("arm_archs")) r.strings("arm_archs", m.arm_archs.emplace());
  r.strings("arm_isas", m.arm_isas);
  r.strings_map("arch_isas", m.arch_isas);
  r.strings("cpu_isas", m.cpu_isas);
  r.strings("darwin", m.darwin);
  if (const toml::table* text = r.table("arch_text")) {
    TableReader a(*text, "repo.matrix.arch_text.", source);
    for (auto&& [arch, _] : *text)
      a.string_map(std::string(arch.str()).c_str(), m.arch_text[std::string(arch.str())]);
  }
  if (const toml::node* cuda = t.get("cuda"); cuda && cuda->is_string()) {
    CudaGroup g;
    r.string("cuda", g.version);
    for (const auto& [arch, _] : m.gpu_archs) g.archs.push_back(arch);
    m.cuda.push_back(std::move(g));
  } else if (cuda) {
    r.skip("cuda");
    const toml::array* groups = cuda->as_array();
    if (!groups || !groups->is_array_of_tables())
      throw Failure{where(*cuda) +
                    "cuda: write one version as cuda = \"13_0\", or each as a [[repo.matrix.cuda]] table"};
    for (const toml::node& item : *groups) {
      TableReader g(*item.as_table(), "repo.matrix.cuda.", source);
      CudaGroup group;
      g.string("version", group.version);
      g.strings("archs", group.archs);
      g.string("nixpkgs", group.nixpkgs);
      g.string("cuda_packages", group.cuda_packages);
      g.reject_unknown();
      if (group.version.empty())
        throw Failure{where(item) + "cuda.version: every [[repo.matrix.cuda]] needs a version (\"12_8\")"};
      for (const CudaGroup& other : m.cuda)
        if (other.version == group.version)
          throw Failure{where(item) + "cuda.version: '" + group.version + "' is given twice"};
      m.cuda.push_back(std::move(group));
    }
  }
  auto by_kind = [&](const char* key, auto& raw, auto& out) {
    for (auto& [name, value] : raw) {
      std::optional<RecipeKind> kind = recipe_kind_named(name);
      if (!kind)
        throw Failure{where(t) + key + ": unknown kind '" + name + "' (gpu_x86, gpu_arm, cpu, darwin)"};
      out[*kind] = value;
    }
  };
  std::map<std::string, std::string> templates;
  std::map<std::string, std::vector<std::string>> require, forbid;
  r.string_map("templates", templates);
  r.strings_map("require", require);
  r.strings_map("forbid", forbid);
  by_kind("templates", templates, m.templates);
  by_kind("require", require, m.require);
  by_kind("forbid", forbid, m.forbid);
  r.reject_unknown();
  std::set<std::string> archs;
  for (const CudaGroup& g : m.cuda) archs.insert(g.archs.begin(), g.archs.end());
  auto known_arch = [&](const std::string& key, const std::string& arch) {
    if (!archs.count(arch))
      throw Failure{where(t) + key + ": '" + arch + "' is an architecture of no CUDA version of the matrix"};
  };
  for (const std::string& arch : m.arm_archs.value_or(std::vector<std::string>{}))
    known_arch("arm_archs", arch);
  for (const auto& [arch, _] : m.arch_isas) known_arch("arch_isas", arch);
  for (const auto& [arch, _] : m.arch_text) known_arch("arch_text", arch);
  return m;
}

const toml::table* section(const toml::table& root, const char* name, const std::string& source) {
  const toml::node* n = root.get(name);
  if (!n) return nullptr;
  if (!n->is_table())
    throw Failure{source + ":" + std::to_string(n->source().begin.line) + ": [" + name +
                  "] must be a table, got " + type_name(*n)};
  return n->as_table();
}

}  // namespace

Config default_config(const Environment& env) {
  Config c;
  if (env.is_root) {
    c.daemon.state_dir = "/var/lib/ptbuild";
    c.daemon.socket = "/run/ptbuild/ptbuildd.sock";
  } else {
    std::string state_home = !env.xdg_state_home.empty() ? env.xdg_state_home : env.home + "/.local/state";
    c.daemon.state_dir = state_home + "/ptbuild";
    std::string runtime = !env.xdg_runtime_dir.empty() ? env.xdg_runtime_dir : env.user_runtime_fallback;
    c.daemon.socket = runtime + "/ptbuild/ptbuildd.sock";
  }
  c.backend.kind = env.flox_on_path ? "flox" : "nix";
  c.backend.program = c.backend.kind;
  c.source = "embedded defaults";
  return c;
}

static void add_default_repo(Config& c, const Environment& env) {
  RepoConfig repo;
  std::string cwd = env.cwd;
  while (cwd.size() > 1 && cwd.back() == '/') cwd.pop_back();
  size_t slash = cwd.rfind('/');
  repo.name = slash == std::string::npos || slash + 1 == cwd.size() ? "default" : cwd.substr(slash + 1);
  repo.path = cwd;
  c.repos.push_back(repo);
}

namespace {
// The line of the first byte sequence that is not UTF-8, or 0. TOML is UTF-8, and the TOML
// library is not to be trusted with anything else (a fuzzer found a malformed BOM that takes
// it into undefined behaviour).
int first_invalid_utf8_line(std::string_view text) {
  int line = 1;
  for (size_t i = 0; i < text.size();) {
    size_t len = utf8_char_length(text, i);
    if (len == 0) return line;
    if (text[i] == '\n') ++line;
    i += len;
  }
  return 0;
}
// The config as pure ASCII for the TOML reader, which has undefined behaviour on some non-ASCII
// characters outside strings (toml++ 3.3's whitespace table, found by fuzz_config). Non-ASCII
// characters in basic strings become \u escapes (the same value), in comments '?'; anywhere else
// TOML does not allow them, and in 'literal' strings they cannot be escaped: both are errors.
// Lines stay where they are, so messages keep their line numbers.
struct AsciiResult {
  std::string text;
  int bad_line = 0;  // where a character could not be kept, or 0
  const char* why = "";
};

AsciiResult asciify(std::string_view text) {
  enum { normal, comment, basic, literal, ml_basic, ml_literal } state = normal;
  AsciiResult r;
  int line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // Valid UTF-8 was checked before: decode one code point.
      size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : 4;
      uint32_t cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
      for (size_t k = 1; k < len; ++k) cp = cp << 6 | (static_cast<unsigned char>(text[i + k]) & 0x3f);
      i += len - 1;
      char buf[16];
      if (state == comment) {
        r.text += '?';
      } else if (state == basic || state == ml_basic) {
        std::snprintf(buf, sizeof buf, cp > 0xffff ? "\\U%08X" : "\\u%04X", cp);
        r.text += buf;
      } else {
        r.bad_line = line;
        r.why = state == normal
                    ? "a non-ASCII character outside a string or comment (TOML keys are ASCII)"
                    : "a non-ASCII character in a 'literal' string (write it in a \"basic\" string)";
        return r;
      }
      continue;
    }
    char ch = static_cast<char>(c);
    r.text += ch;
    if (ch == '\n') {
      ++line;
      if (state == comment) state = normal;
      continue;
    }
    auto starts = [&](std::string_view s) { return text.substr(i).starts_with(s); };
    auto take = [&](size_t n) {  // copy n more characters as they are
      r.text.append(text.substr(i + 1, n));
      i += n;
    };
    switch (state) {
      case normal:
        if (ch == '#') {
          state = comment;
        } else if (starts(R"(""")")) {
          state = ml_basic;
          take(2);
        } else if (starts("'''")) {
          state = ml_literal;
          take(2);
        } else if (ch == '"') {
          state = basic;
        } else if (ch == '\'') {
          state = literal;
        }
        break;
      case comment:
        break;
      case basic:
      case ml_basic:
        if (ch == '\\' && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0x80) {
          take(1);
        } else if (state == basic && ch == '"') {
          state = normal;
        } else if (state == ml_basic && starts(R"(""")")) {
          state = normal;
          take(2);
        }
        break;
      case literal:
        if (ch == '\'') state = normal;
        break;
      case ml_literal:
        if (starts("'''")) {
          state = normal;
          take(2);
        }
        break;
    }
  }
  return r;
}
}  // namespace

namespace {

// One [section] of plain keys, read by its own function.
struct SectionReader {
  const char* name;
  void (*read)(TableReader&, Config&);
};

void read_daemon(TableReader& r, Config& c) {
  r.path("state_dir", c.daemon.state_dir);
  r.path("socket", c.daemon.socket);
  r.string("admin_group", c.daemon.admin_group);
  r.integer("max_parallel", c.daemon.max_parallel, 1, 1024);
  // A limit of nothing would fail every build at once.
  r.duration("build_timeout", c.daemon.build_timeout, std::chrono::seconds(1));
  r.duration("max_silent", c.daemon.max_silent, std::chrono::seconds(1));
  r.duration("kill_grace", c.daemon.kill_grace);
  r.integer("retries", c.daemon.retries, 0, 100);
  r.duration("retry_backoff", c.daemon.retry_backoff);
  r.duration("builder_backoff", c.daemon.builder_backoff, std::chrono::seconds(1));
  r.size("log_max", c.daemon.log_max, 64 * 1024);
  r.boolean("live_log", c.daemon.live_log);
  r.one_of("order", c.daemon.order, {"longest-first", "fifo"});
  r.string("default_family", c.daemon.default_family);
  r.string("builders_file", c.daemon.builders_file);
}

void read_backend(TableReader& r, Config& c) {
  r.one_of("kind", c.backend.kind, {"flox", "nix"});
  c.backend.program = c.backend.kind;
  r.string("program", c.backend.program);
  r.strings("args", c.backend.args);
}

void read_hashfix(TableReader& r, Config& c) {
  r.boolean("enabled", c.hashfix.enabled);
  r.integer("max_rounds", c.hashfix.max_rounds, 1, 100);
  r.boolean("commit", c.hashfix.commit);
}

void read_verify(TableReader& r, Config& c) {
  r.boolean("enabled", c.verify.enabled);
  r.string("command", c.verify.command);
}

void read_publish(TableReader& r, Config& c) {
  r.boolean("auto", c.publish.auto_publish);
  r.string("org", c.publish.org);
  r.string("store", c.publish.store);
  r.string("signing_key", c.publish.signing_key);
}

void read_web(TableReader& r, Config& c) {
  r.listen("listen", c.web.listen);
  r.strings("hosts", c.web.hosts);
  r.string("url", c.web.url);
  if (!c.web.url.empty() && !c.web.url.starts_with("http://") && !c.web.url.starts_with("https://"))
    r.reject("url", "expected http://… or https://…, got \"" + c.web.url + "\"");
}

void read_resources(TableReader& r, Config& c) {
  r.size("default_memory", c.resources.default_memory, 1 << 20);
  r.one_of("oom_retry", c.resources.oom_retry, {"alone", "half-cores"});
  r.integer("pressure_stop", c.resources.pressure_stop, 1, 100);
}

void read_gc(TableReader& r, Config& c) {
  r.integer("keep_good", c.gc.keep_good, 1, 1000);  // the newest good build is always kept
  r.size("max_free", c.gc.max_free, 1 << 20);
  r.boolean("auto", c.gc.auto_collect);
}

void read_nightly(TableReader& r, Config& c) {
  r.strings("targets", c.nightly.targets);
  r.boolean("pull", c.nightly.pull);
}

// In the order they are read (the first error found is the one reported).
constexpr SectionReader kLeadingSections[] = {{"daemon", read_daemon}, {"backend", read_backend}};
constexpr SectionReader kTrailingSections[] = {
    {"hashfix", read_hashfix},     {"verify", read_verify}, {"publish", read_publish}, {"web", read_web},
    {"resources", read_resources}, {"gc", read_gc},         {"nightly", read_nightly}};

// Reads each section that is there, then refuses the keys its reader did not take.
template <size_t N>
void read_sections(const toml::table& root, const SectionReader (&sections)[N], const std::string& source,
                   Config& c) {
  for (const SectionReader& s : sections)
    if (const toml::table* t = section(root, s.name, source)) {
      TableReader r(*t, std::string(s.name) + ".", source);
      s.read(r, c);
      r.reject_unknown();
    }
}

// The [[name]] tables of the root, each with the line it starts on; a `name` that is not an
// array of tables is refused with `what`.
std::vector<const toml::table*> array_of_tables(const toml::table& root, const char* name,
                                                const std::string& source, const char* what) {
  std::vector<const toml::table*> out;
  if (const toml::node* n = root.get(name)) {
    const toml::array* items = n->as_array();
    if (!items || !items->is_array_of_tables())
      throw Failure{source + ":" + std::to_string(n->source().begin.line) + ": " + name + ": " + what};
    for (const toml::node& item : *items) out.push_back(item.as_table());
  }
  return out;
}

RepoConfig read_repo(const toml::table& t, const std::string& source, const std::string& base_dir) {
  TableReader r(t, "repo.", source);
  RepoConfig repo;
  r.string("name", repo.name);
  r.string("path", repo.path);
  r.string("recipes", repo.recipes);
  r.string("after", repo.after);
  r.string("default_cuda", repo.default_cuda);
  if (const toml::table* m = r.table("matrix")) repo.matrix = read_matrix(*m, source);
  r.strings("doctor_disable", repo.doctor_disable);
  r.reject_unknown();
  std::string where = source + ":" + std::to_string(t.source().begin.line) + ": ";
  for (const std::string& rule : repo.doctor_disable)
    if (!find_lint_rule(rule)) {
      std::string known;
      for (const LintRule& l : lint_rules()) known += (known.empty() ? "" : ", ") + std::string(l.name);
      throw Failure{where + "repo.doctor_disable: no doctor rule is named '" + rule + "' (" + known + ")"};
    }
  if (repo.path.empty()) throw Failure{where + "repo.path: every [[repo]] needs a path"};
  repo.path = absolute_to(base_dir, repo.path);
  if (repo.name.empty()) {
    std::string p = repo.path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    repo.name = p.substr(p.rfind('/') + 1);
  }
  return repo;
}

void read_repos(const toml::table& root, const std::string& source, const std::string& base_dir, Config& c) {
  std::set<std::string> names;
  for (const toml::table* t :
       array_of_tables(root, "repo", source, "write each repository as a [[repo]] table")) {
    RepoConfig repo = read_repo(*t, source, base_dir);
    if (!names.insert(repo.name).second)
      throw Failure{source + ":" + std::to_string(t->source().begin.line) +
                    ": repo.name: two repositories are named '" + repo.name + "'"};
    c.repos.push_back(repo);
  }
  for (const RepoConfig& repo : c.repos)
    if (repo.after == repo.name)
      throw Failure{source + ": repo.after: repository '" + repo.name +
                    "' waits for itself: its jobs would never start"};
    else if (!repo.after.empty() && !names.count(repo.after))
      throw Failure{source + ": repo.after: repository '" + repo.name + "' waits for unknown repository '" +
                    repo.after + "'"};
}

BuilderSpec read_builder(const toml::table& t, const std::string& source) {
  TableReader r(t, "builder.", source);
  BuilderSpec b;
  b.line = static_cast<int>(t.source().begin.line);
  std::string where = source + ":" + std::to_string(b.line) + ": ";
  r.string("name", b.name);
  r.string("uri", b.uri);
  r.strings("systems", b.systems);
  r.string("ssh_key", b.ssh_key);
  r.integer("max_jobs", b.max_jobs, 0, 1024);
  r.number("speed_factor", b.speed_factor);
  b.features_declared = r.has("supported_features") || r.has("mandatory_features");
  r.strings("supported_features", b.supported_features);
  r.strings("mandatory_features", b.mandatory_features);
  r.string("public_host_key", b.public_host_key);
  r.size("memory", b.limits.memory, 64 << 20, true);
  r.integer("cores", b.limits.cores, 0, 65536);
  b.limits.min_free_set = r.size("min_free", b.limits.min_free, 0, true);
  b.limits.reserve_set = r.size("reserve", b.limits.reserve, 0, true);
  r.reject_unknown();
  if (b.uri != "local" && !b.uri.starts_with("ssh://") && !b.uri.starts_with("ssh-ng://"))
    throw Failure{where + "builder.uri: expected ssh://…, ssh-ng://… or \"local\", got \"" + b.uri + "\""};
  if (b.systems.empty()) throw Failure{where + "builder.systems: a builder needs at least one system"};
  if (b.name.empty()) b.name = host_of(b.uri);
  if (b.name.empty()) throw Failure{where + "builder.uri: \"" + b.uri + "\" names no host"};
  return b;
}

Config::Notify read_notify(const toml::table& t, const std::string& source) {
  TableReader r(t, "notify.", source);
  Config::Notify n;
  n.line = static_cast<int>(t.source().begin.line);
  bool all = !r.has("on");
  r.strings("on", n.on);
  r.string("command", n.command);
  r.string("webhook", n.webhook);
  r.reject_unknown();
  if (all) n.on.assign(std::begin(kNotifyEvents), std::end(kNotifyEvents));
  for (const std::string& event : n.on)
    if (std::ranges::find_if(kNotifyEvents, [&](const char* e) { return event == e; }) ==
        std::end(kNotifyEvents)) {
      std::string known;
      for (const char* e : kNotifyEvents) known += (known.empty() ? "" : ", ") + std::string(e);
      r.reject("on", "unknown event \"" + event + "\" (" + known + ")");
    }
  if (n.command.empty() && n.webhook.empty())
    throw Failure{source + ":" + std::to_string(n.line) +
                  ": notify: a [[notify]] needs a command or a webhook"};
  if (!n.webhook.empty() && !n.webhook.starts_with("http://"))
    r.reject("webhook", "expected http://…, got \"" + n.webhook +
                            "\" (for https, a command does it: command = \"curl -fsS -H 'Content-Type: "
                            "application/json' --data-binary @- https://…\")");
  return n;
}

void reject_unknown_sections(const toml::table& root, const std::string& source) {
  static const std::set<std::string> kSections{"daemon",  "backend",   "repo",    "hashfix",
                                               "builder", "verify",    "publish", "nightly",
                                               "web",     "resources", "gc",      "notify"};
  for (auto&& [k, v] : root)
    if (!kSections.count(std::string(k.str())))
      throw Failure{source + ":" + std::to_string(k.source().begin.line) + ": unknown key '" +
                    std::string(k.str()) + "'"};
}

// The TOML of a config that is valid UTF-8 (made ASCII first: see asciify()).
toml::table parse_toml(std::string_view text, const std::string& source) {
  if (int line = first_invalid_utf8_line(text))
    throw Failure{source + ":" + std::to_string(line) + ": the file is not valid UTF-8"};
  AsciiResult ascii = asciify(text);
  if (ascii.bad_line) throw Failure{source + ":" + std::to_string(ascii.bad_line) + ": " + ascii.why};
  try {
    return toml::parse(ascii.text, source);
  } catch (const toml::parse_error& e) {
    throw Failure{source + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description())};
  }
}

}  // namespace

ConfigResult parse_config(std::string_view text, const std::string& source, const std::string& base_dir,
                          const Environment& env) {
  Config c = default_config(env);
  c.source = source;
  try {
    toml::table root = parse_toml(text, source);
    read_sections(root, kLeadingSections, source, c);
    read_repos(root, source, base_dir, c);
    for (const toml::table* t :
         array_of_tables(root, "builder", source, "write each builder as a [[builder]] table"))
      c.builders.push_back(read_builder(*t, source));
    read_sections(root, kTrailingSections, source, c);
    for (const toml::table* t :
         array_of_tables(root, "notify", source, "write each notification as a [[notify]] table"))
      c.notify.push_back(read_notify(*t, source));
    reject_unknown_sections(root, source);
  } catch (const Failure& f) {
    return ConfigError{f.message};
  }
  c.daemon.state_dir = absolute_to(base_dir, c.daemon.state_dir);
  c.daemon.builders_file = absolute_to(base_dir, c.daemon.builders_file);
  c.daemon.socket = absolute_to(base_dir, c.daemon.socket);
  c.publish.signing_key = absolute_to(base_dir, c.publish.signing_key);
  for (BuilderSpec& b : c.builders) b.ssh_key = absolute_to(base_dir, b.ssh_key);
  if (c.daemon.builders_file.empty())
    if (std::string problem = fleet_problem(c.fleet()); !problem.empty())
      return ConfigError{source + ": builder: " + problem};
  if (c.repos.empty()) add_default_repo(c, env);
  return c;
}

std::vector<BuilderSpec> Config::fleet() const {
  if (!builders.empty()) return builders;
  BuilderSpec local;
  local.name = "local";
  local.max_jobs = daemon.max_parallel;
  return {local};
}

std::optional<ConfigError> add_builders_file(Config& c, std::string_view machines_text) {
  MachinesResult parsed = parse_machines(machines_text, c.daemon.builders_file);
  if (auto* error = std::get_if<std::string>(&parsed)) return ConfigError{"daemon.builders_file: " + *error};
  for (BuilderSpec& b : std::get<std::vector<BuilderSpec>>(parsed)) c.builders.push_back(std::move(b));
  if (std::string problem = fleet_problem(c.fleet()); !problem.empty())
    return ConfigError{c.source + " and " + c.daemon.builders_file + ": " + problem};
  return std::nullopt;
}

std::string render_config(const Config& c) {
  auto str_array = [](const std::vector<std::string>& v) {
    toml::array a;
    for (const auto& s : v) a.push_back(s);
    return a;
  };
  toml::table daemon{{"state_dir", c.daemon.state_dir},
                     {"socket", c.daemon.socket},
                     {"admin_group", c.daemon.admin_group},
                     {"max_parallel", c.daemon.max_parallel},
                     {"build_timeout", format_duration(c.daemon.build_timeout)},
                     {"max_silent", format_duration(c.daemon.max_silent)},
                     {"kill_grace", format_duration(c.daemon.kill_grace)},
                     {"retries", c.daemon.retries},
                     {"retry_backoff", format_duration(c.daemon.retry_backoff)},
                     {"builder_backoff", format_duration(c.daemon.builder_backoff)},
                     {"log_max", format_size(c.daemon.log_max)},
                     {"live_log", c.daemon.live_log},
                     {"order", c.daemon.order},
                     {"default_family", c.daemon.default_family},
                     {"builders_file", c.daemon.builders_file}};
  toml::table backend{
      {"kind", c.backend.kind}, {"program", c.backend.program}, {"args", str_array(c.backend.args)}};
  toml::array repos;
  for (const RepoConfig& r : c.repos)
    repos.push_back(toml::table{{"name", r.name},
                                {"path", r.path},
                                {"recipes", r.recipes},
                                {"after", r.after},
                                {"default_cuda", r.default_cuda},
                                {"doctor_disable", str_array(r.doctor_disable)}});
  toml::array fleet;
  for (const BuilderSpec& b : c.fleet()) {
    toml::table t{{"name", b.name},
                  {"uri", b.uri},
                  {"systems", str_array(b.systems)},
                  {"ssh_key", b.ssh_key},
                  {"max_jobs", b.max_jobs},
                  {"speed_factor", b.speed_factor},
                  {"public_host_key", b.public_host_key},
                  {"memory", b.limits.memory ? format_size(b.limits.memory) : ""},
                  {"cores", b.limits.cores}};
    t.insert("min_free", b.limits.min_free_set ? format_size(b.limits.min_free) : "");
    t.insert("reserve", b.limits.reserve_set ? format_size(b.limits.reserve) : "");
    if (b.features_declared) {  // without, `local` takes what Nix's own system-features allow
      t.insert("supported_features", str_array(b.supported_features));
      t.insert("mandatory_features", str_array(b.mandatory_features));
    }
    fleet.push_back(std::move(t));
  }
  toml::table root{
      {"daemon", daemon},
      {"backend", backend},
      {"repo", repos},
      {"builder", fleet},
      {"hashfix", toml::table{{"enabled", c.hashfix.enabled},
                              {"max_rounds", c.hashfix.max_rounds},
                              {"commit", c.hashfix.commit}}},
      {"verify", toml::table{{"enabled", c.verify.enabled}, {"command", c.verify.command}}},
      {"publish", toml::table{{"auto", c.publish.auto_publish},
                              {"org", c.publish.org},
                              {"store", c.publish.store},
                              {"signing_key", c.publish.signing_key}}},
      {"web", toml::table{{"listen", c.web.listen}, {"hosts", str_array(c.web.hosts)}, {"url", c.web.url}}},
      {"resources", toml::table{{"default_memory", format_size(c.resources.default_memory)},
                                {"oom_retry", c.resources.oom_retry},
                                {"pressure_stop", c.resources.pressure_stop}}},
      {"gc", toml::table{{"keep_good", c.gc.keep_good},
                         {"max_free", format_size(c.gc.max_free)},
                         {"auto", c.gc.auto_collect}}},
      {"nightly", toml::table{{"targets", str_array(c.nightly.targets)}, {"pull", c.nightly.pull}}}};
  toml::array notify;
  for (const Config::Notify& n : c.notify)
    notify.push_back(toml::table{{"on", str_array(n.on)}, {"command", n.command}, {"webhook", n.webhook}});
  if (!notify.empty()) root.insert("notify", notify);  // an empty array is no array of tables
  std::ostringstream out;
  out << "# effective configuration (from " << c.source << ")\n"
      << "# [[builder]]: the whole fleet — the [[builder]] tables, the lines of daemon.builders_file, or\n"
      << "# with neither the one local builder with max_parallel slots; a builder's memory, min_free\n"
      << "# and reserve \"\" follow the machine (all of it; 50GiB or a tenth of the store; 8GiB or an\n"
      << "# eighth of the memory)\n"
      << root << "\n";
  return out.str();
}

}  // namespace ptbuild
