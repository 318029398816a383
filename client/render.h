// Human output: aligned tables, the matrix grid, colour only on a terminal (and not with NO_COLOR).
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/changes.h"
#include "core/replies.h"

namespace ptbuild::client {

struct Style {
  bool color = false;
  bool terminal = false;      // stdout is a terminal: screens may be redrawn in place
  static Style for_stdout();  // colour when stdout is a terminal and NO_COLOR is unset
  std::string paint(const std::string& text, const char* sgr) const;
  std::string state(const std::string& state) const;  // coloured by state
};

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  // `cells` may carry colour codes; widths are measured without them.
  void add(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  void print(std::ostream& out) const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

size_t display_width(const std::string& s);  // without ANSI codes, counting UTF-8 code points
// Text from the daemon (variant names come from file names) made safe for a terminal: control
// characters, escape codes among them, are shown as \xNN instead of acting on the screen.
std::string printable(std::string_view text);
std::string progress_bar(int64_t done, int64_t total, int width);
// "2026-11-21T23:19:52.123Z" -> "11-21 23:19:52" (UTC, as the daemon writes it)
std::string short_time(const std::string& rfc3339);

void print_jobs_table(std::ostream& out, const std::vector<protocol::JobView>& jobs, const Style& style);
void print_job(std::ostream& out, const Job& job, const Style& style);
// `ptbuild changes`: the summary, then every difference.
void print_changes(std::ostream& out, const Changes& changes, const Style& style);
void print_matrix(std::ostream& out, const std::vector<protocol::VariantView>& variants, const Style& style);

}  // namespace ptbuild::client
