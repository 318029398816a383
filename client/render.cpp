#include "client/render.h"

#include <sstream>

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/resources.h"

namespace ptbuild::client {

using nlohmann::json;

Style Style::for_stdout() {
  const char* no_color = std::getenv("NO_COLOR");
  bool terminal = ::isatty(STDOUT_FILENO);
  return Style{terminal && !(no_color && *no_color), terminal};
}

std::string Style::paint(const std::string& text, const char* sgr) const {
  if (!color) return text;
  return std::string("\x1b[") + sgr + "m" + text + "\x1b[0m";
}

std::string Style::state(const std::string& s) const {
  if (s == "succeeded") return paint(s, "32");
  if (s == "failed") return paint(s, "31");
  if (s == "running") return paint(s, "36");
  if (s == "cancelled") return paint(s, "33");
  return s;
}

size_t display_width(const std::string& s) {
  size_t width = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0x1b) {  // skip "ESC [ ... letter"
      while (i < s.size() && !std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
      continue;
    }
    if ((c & 0xC0) != 0x80) ++width;  // count code points, not continuation bytes
  }
  return width;
}

void Table::print(std::ostream& out) const {
  std::vector<size_t> widths(headers_.size(), 0);
  for (size_t i = 0; i < headers_.size(); ++i) widths[i] = display_width(headers_[i]);
  for (const auto& row : rows_)
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], display_width(row[i]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t i = 0; i < cells.size() && i < widths.size(); ++i) {
      text += cells[i];
      if (i + 1 < cells.size()) text += std::string(widths[i] - display_width(cells[i]) + 2, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << "\n";
  };
  line(headers_);
  for (const auto& row : rows_) line(row);
}

std::string progress_bar(int64_t done, int64_t total, int width) {
  if (total <= 0) return "";
  double f = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  int filled = static_cast<int>(f * width + 0.5);
  std::string bar = "[";
  for (int i = 0; i < width; ++i) bar += i < filled ? "#" : "-";
  return bar + "] " + std::to_string(static_cast<int>(f * 100)) + "%";
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string short_time(const std::string& rfc3339) {
  // "2026-11-21T23:19:52.123Z" -> "11-21 23:19:52"
  if (rfc3339.size() < 19) return rfc3339;
  return rfc3339.substr(5, 5) + " " + rfc3339.substr(11, 8);
}

namespace {
std::string opt(const std::optional<std::string>& v) {
  return v ? printable(*v) : "";
}
template <class Number>
std::string opt_number(const std::optional<Number>& v) {
  return v ? std::to_string(*v) : "";
}

std::string progress_of(const Job& job) {
  if (!job.progress_total) return "";
  int64_t done = job.progress_done.value_or(0), total = *job.progress_total;
  return progress_bar(done, total, 12) + " " + std::to_string(done) + "/" + std::to_string(total);
}

// A JSON value of a job (its fixes, its verification) as a string for a table cell.
std::string text_of(const json& j) {
  if (j.is_null()) return "";
  return printable(j.is_string() ? j.get<std::string>() : j.dump());
}
}  // namespace

void print_jobs_table(std::ostream& out, const std::vector<protocol::JobView>& jobs, const Style& style) {
  if (jobs.empty()) {
    out << "no jobs\n";
    return;
  }
  Table t({"ID", "STATE", "KIND", "VARIANT", "PRIO", "TRY", "ON", "WHEN", "DETAIL"});
  for (const protocol::JobView& v : jobs) {
    const Job& j = v.job;
    std::string state(to_string(j.state));
    std::string when = j.finished_at.value_or(j.started_at.value_or(j.created_at));
    std::string detail;
    if (j.failure)
      detail = printable(j.failure->failure_class + ": " + j.failure->message);
    else if (j.state == JobState::running)
      detail = progress_of(j);
    else if (j.state == JobState::queued)
      detail = j.waiting ? "waiting: " + printable(*j.waiting) : printable(j.reason);
    if (v.eta) detail += (detail.empty() ? "" : "  ") + std::string("eta ") + short_time(*v.eta);
    t.add({"#" + std::to_string(j.id), style.state(state), std::string(to_string(j.kind)),
           printable(j.variant), std::to_string(j.priority), std::to_string(j.attempt), opt(j.builder),
           short_time(printable(when)), detail});
  }
  t.print(out);
}

void print_job(std::ostream& out, const Job& j, const Style& style) {
  auto row = [&](const char* label, const std::string& value) {
    if (!value.empty()) out << label << std::string(12 - std::string(label).size(), ' ') << value << "\n";
  };
  row("job", "#" + std::to_string(j.id) + " (" + std::string(to_string(j.kind)) + ")");
  row("variant", printable(j.variant));
  row("repo", printable(j.repo));
  row("state", style.state(std::string(to_string(j.state))));
  row("waiting", opt(j.waiting));
  row("builder", opt(j.builder));
  row("priority", std::to_string(j.priority));
  row("reason", printable(j.reason));
  row("attempt", std::to_string(j.attempt));
  row("created", printable(j.created_at));
  row("started", opt(j.started_at));
  row("finished", opt(j.finished_at));
  row("exit code", opt_number(j.exit_code));
  row("progress", progress_of(j));
  row("commit", opt(j.commit));
  row("output", opt(j.out_path));
  row("log", printable(j.log_path));
  if (const std::optional<Failure>& f = j.failure) {
    row("failure", style.paint(printable(f->failure_class), "31") + ": " + printable(f->message));
    row("hint", printable(f->hint));
    if (!f->excerpt.empty()) {
      out << "excerpt:\n";
      std::istringstream lines(f->excerpt);
      for (std::string line; std::getline(lines, line);) out << printable(line) << "\n";
    }
  }
  json changes = j.changes_json ? json::parse(*j.changes_json, nullptr, false) : json();
  if (changes.is_object() && changes["summary"].is_array()) {
    std::string since = changes["since"].is_number() ? " since #" + changes["since"].dump() : "";
    out << "changed" << since << " (ptbuild changes " << j.id << " for all):\n";
    for (const json& line : changes["summary"]) out << "  " << text_of(line) << "\n";
  }
  json fixes = json::parse(j.fixes_json, nullptr, false);
  if (fixes.is_array())
    for (const json& fx : fixes)
      if (fx.is_object())
        row("fixed", text_of(fx.value("file", json())) + ":" + text_of(fx.value("line", json())) + " " +
                         text_of(fx.value("old", json())) + " -> " + text_of(fx.value("new", json())));
  if (std::optional<ResourceUse> used =
          j.resources_json ? parse_resource_use(*j.resources_json) : std::nullopt) {
    std::string text =
        used->peak_memory ? "peak memory " + human_size(*used->peak_memory) : "peak memory unknown";
    if (used->cpu_seconds) text += ", cpu " + std::to_string(static_cast<int64_t>(*used->cpu_seconds)) + " s";
    text += ", wall " + std::to_string(static_cast<int64_t>(used->wall_seconds)) + " s";
    if (used->output_size) text += ", output " + human_size(*used->output_size);
    if (used->build_dir_peak) text += ", build dir " + human_size(*used->build_dir_peak);
    if (used->cores) text += ", " + std::to_string(used->cores) + " cores";
    row("used", text + " (" + printable(used->measured_by) + ")");
    if (used->oom_killed) row("memory", style.paint("killed for memory: queued again to run alone", "33"));
  }
  json verify = j.verify_json ? json::parse(*j.verify_json, nullptr, false) : json();
  if (verify.is_object()) {
    row("verified", verify.value("ok", false) ? style.paint("ok", "32") : style.paint("FAILED", "31"));
    for (const char* key : {"problems", "notes"})
      if (verify[key].is_array())
        for (const json& p : verify[key])
          row(key == std::string("problems") ? "problem" : "note", text_of(p));
  }
}

void print_changes(std::ostream& out, const Changes& c, const Style& style) {
  if (!c.since) {
    out << printable(c.summary.empty() ? "no earlier good build to compare with" : c.summary.front()) << "\n";
    return;
  }
  out << "#" << c.job << " " << printable(c.variant) << " against its last good build #" << *c.since;
  if (c.since_commit && c.commit)
    out << " (" << c.since_commit->substr(0, 7) << ".." << c.commit->substr(0, 7) << ")";
  out << "\n";
  for (const std::string& line : c.summary) out << "  " << printable(line) << "\n";
  if (c.derivation && !c.derivation->same) {
    const DerivationDiff& d = *c.derivation;
    if (!d.versions.empty()) out << "\n" << style.paint("inputs", "1") << "\n";
    for (const DerivationDiff::Version& v : d.versions)
      out << "  "
          << (v.change == "added"     ? "+ "
              : v.change == "removed" ? "- "
                                      : "  ")
          << printable(v.name) << " "
          << printable(v.change == "moved" ? v.before + " -> " + v.after : v.before + v.after) << "\n";
    if (d.rebuilt) out << "  (" << d.rebuilt << " more rebuilt at the same version)\n";
    if (!d.sources.empty()) out << "\n" << style.paint("sources", "1") << "\n";
    for (const DerivationDiff::Source& src : d.sources)
      out << "  " << printable(src.name) << " " << printable(src.url) << ": " << printable(src.before)
          << " -> " << printable(src.after) << "\n";
    if (!d.variables.empty()) out << "\n" << style.paint("variables", "1") << "\n";
    for (const DerivationDiff::Variable& v : d.variables) {
      out << "  " << printable(v.name) << "\n";
      for (const std::string& a : v.added) out << "    + " << printable(a) << "\n";
      for (const std::string& r : v.removed) out << "    - " << printable(r) << "\n";
    }
    if (!d.files.empty()) out << "\n" << style.paint("files", "1") << "\n";
    for (const std::string& f : d.files) out << "  " << printable(f) << "\n";
  }
  if (!c.commits.empty()) out << "\n" << style.paint("commits", "1") << "\n";
  for (const RepoCommit& r : c.commits) {
    out << "  " << r.sha.substr(0, 10) << " " << printable(r.subject) << " (" << printable(r.author) << ", "
        << printable(r.at) << ")\n";
    for (const std::string& f : r.files) out << "      " << printable(f) << "\n";
  }
  if (!c.actions.empty()) out << "\n" << style.paint("ptbuild", "1") << "\n";
  for (const std::string& a : c.actions) out << "  " << printable(a) << "\n";
}

void print_matrix(std::ostream& out, const std::vector<protocol::VariantView>& variants, const Style& style) {
  // One grid per CUDA version (architectures x ISAs), then CPU-only and Darwin variants, then the
  // names that follow no pattern. A cell shows the state of the variant's latest job.
  auto state_mark = [&](const protocol::VariantView& v) -> std::string {
    std::string s = opt(v.last_state);
    if (s.empty()) return style.paint(".", "2");
    if (s == "succeeded") return style.paint("ok", "32");
    if (s == "failed") return style.paint("FAIL", "31");
    if (s == "running") return style.paint("run", "36");
    if (s == "queued") return style.paint("q", "34");
    return style.paint("x", "33");
  };
  bool any_untracked = false;
  auto mark = [&](const protocol::VariantView& v) -> std::string {
    bool untracked = v.tracked == false;
    any_untracked = any_untracked || untracked;
    return state_mark(v) + (untracked ? style.paint("!", "33") : "");
  };
  struct Grid {
    std::set<std::string> isas;
    std::map<std::string, std::map<std::string, std::string>> cells;  // row -> isa -> mark
  };
  std::map<std::string, Grid> grids;  // title -> grid
  std::vector<std::string> others;
  for (const protocol::VariantView& v : variants) {
    std::string family = opt(v.family), python = opt(v.python), cuda = opt(v.cuda);
    std::string isa = opt(v.isa), extra = opt(v.extra);
    if (family.empty()) {
      others.push_back(printable(v.name) + "  " + mark(v));
      continue;
    }
    std::string title = family + " python" + python + " " +
                        (cuda.empty() ? (opt(v.platform) == "darwin" ? "darwin" : "cpu") : "cuda" + cuda);
    if (!extra.empty()) title += " (" + extra + ")";
    Grid& g = grids[title];
    std::string col = isa.empty() ? "-" : isa;
    std::string row = cuda.empty() ? (opt(v.platform) == "darwin" ? "mps" : "cpu") : opt(v.gpu_arch);
    g.isas.insert(col);
    g.cells[row][col] = mark(v);
  }
  auto arch_number = [](const std::string& a) {
    return a.size() > 2 && a.starts_with("sm") ? std::atoi(a.c_str() + 2) : 0;
  };
  bool first = true;
  for (auto& [title, g] : grids) {
    if (!first) out << "\n";
    first = false;
    out << style.paint(title, "1") << "\n";
    std::vector<std::string> headers{""};
    headers.insert(headers.end(), g.isas.begin(), g.isas.end());
    Table t(headers);
    std::vector<std::string> rows;
    for (auto& [row, _] : g.cells) rows.push_back(row);
    std::sort(rows.begin(), rows.end(), [&](const std::string& a, const std::string& b) {
      return arch_number(a) != arch_number(b) ? arch_number(a) < arch_number(b) : a < b;
    });
    for (const std::string& row : rows) {
      std::vector<std::string> cells{row};
      for (const std::string& isa : g.isas) {
        auto it = g.cells[row].find(isa);
        cells.push_back(it == g.cells[row].end() ? "" : it->second);
      }
      t.add(cells);
    }
    t.print(out);
  }
  if (!others.empty()) {
    out << (first ? "" : "\n") << style.paint("other packages", "1") << "\n";
    for (const auto& o : others) out << "  " << o << "\n";
  }
  out << "\n"
      << variants.size() << " variants   legend: ok succeeded, FAIL failed, run running, "
      << "q queued, x cancelled, . never built"
      << (any_untracked ? ", ! recipe not tracked by git (flox refuses it)" : "") << "\n";
}

}  // namespace ptbuild::client
