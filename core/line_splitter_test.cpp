#include "core/line_splitter.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
std::vector<std::string> split(LineSplitter& s, const std::vector<std::string>& chunks, bool finish = true) {
  std::vector<std::string> lines;
  auto add = [&](std::string_view l) { lines.emplace_back(l); };
  for (const std::string& c : chunks) s.feed(c, add);
  if (finish) s.finish(add);
  return lines;
}
}  // namespace

TEST_CASE("line splitter: lines within and across chunks, an unended last line, empty lines") {
  LineSplitter s(1024);
  CHECK(split(s, {"a\nb", "c\n\nd", "", "e\nf"}) == std::vector<std::string>{"a", "bc", "", "de", "f"});
  CHECK(split(s, {"x\n"}) == std::vector<std::string>{"x"});
  CHECK(split(s, {"no end", " yet"}, false).empty());
  CHECK(split(s, {"\n"}) == std::vector<std::string>{"no end yet"});
}

TEST_CASE("line splitter: a line past its limit is handed on in pieces instead of growing") {
  LineSplitter s(8);
  CHECK(split(s, {"0123", "45678", "9\nok\n"}) == std::vector<std::string>{"012345678", "9", "ok"});
}
