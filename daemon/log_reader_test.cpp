#include "daemon/log_reader.h"

#include <random>

#include <doctest/doctest.h>

#include "daemon/runner/build_log.h"
#include "tests/support/temp_dir.h"

using namespace ptbuild;

namespace {
std::string joined(const std::vector<std::string>& chunks) {
  std::string out;
  for (const auto& c : chunks) out += c;
  return out;
}
}  // namespace

TEST_CASE("log reader: the whole log or its last lines") {
  testing::TempDir dir;
  std::string path = dir.write("1.log", "one\ntwo\nthree\n");
  CHECK(joined(read_log(path, 0)) == "one\ntwo\nthree\n");
  CHECK(joined(read_log(path, 2)) == "two\nthree\n");
  CHECK(joined(read_log(path, 10)) == "one\ntwo\nthree\n");
  std::string partial = dir.write("2.log", "a\nb\nc");
  CHECK(joined(read_log(partial, 1)) == "c");
  CHECK(read_log(dir / "missing.log", 0).empty());
}

TEST_CASE("log reader: a large log comes in chunks under the protocol's line cap") {
  testing::TempDir dir;
  std::string big(3 * kLogChunk + 5, 'x');
  std::string path = dir.write("big.log", big + "\nlast line\n");
  auto chunks = read_log(path, 0);
  CHECK(chunks.size() == 4);
  for (const auto& c : chunks) CHECK(c.size() <= kLogChunk);
  CHECK(joined(chunks).size() == big.size() + 11);
  CHECK(joined(read_log(path, 1)) == "last line\n");
}

namespace {
// The last n lines as `tail -n` counts them (a final newline ends the last line).
std::string last_lines(const std::string& text, int64_t n) {
  size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  size_t start = end;
  for (int64_t found = 0; start > 0; --start)
    if (text[start - 1] == '\n' && ++found == n) break;
  return text.substr(start);
}
}  // namespace

TEST_CASE("log reader: --tail over zstd frames cut anywhere, and over a plain log, agrees with tail -n") {
  testing::TempDir dir;
  std::mt19937 rng(11);
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "line " + std::to_string(i) + std::string(rng() % 40, '.') + "\n";
  text += "no newline at the end";
  std::string zst = dir / "1.log.zst";
  {
    BuildLog log;
    REQUIRE(log.open(zst).empty());
    for (size_t at = 0; at < text.size();) {  // frames that end in the middle of lines
      size_t n = std::min<size_t>(text.size() - at, 1 + rng() % 5000);
      log.write(std::string_view(text).substr(at, n));
      log.flush();
      at += n;
    }
  }
  std::string plain = dir.write("2.log", text);
  for (int64_t n : {1, 2, 7, 100, 2999, 3000, 3001, 5000}) {
    CAPTURE(n);
    CHECK(joined(read_log(zst, n)) == last_lines(text, n));
    CHECK(joined(read_log(plain, n)) == last_lines(text, n));
  }
  CHECK(joined(read_log(zst, 0)) == text);
}

TEST_CASE("log reader: a cursor follows a log that grows, frame by frame and inside an open frame") {
  testing::TempDir dir;
  std::string path = dir / "1.log.zst";
  BuildLog log;
  REQUIRE(log.open(path).empty());
  LogReader reader(path);
  LogCursor cursor;
  std::string seen;
  bool at_end = false;
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    std::string line = "step " + std::to_string(i) + "\n";
    expected += line;
    log.write(line);
    if (i % 3 == 0) log.flush();
    seen += reader.read(cursor, 10, at_end);  // small pieces: the cursor stops inside frames
  }
  log.close();
  while (true) {
    seen += reader.read(cursor, 10, at_end);
    if (at_end) break;
  }
  CHECK(seen == expected);
}
