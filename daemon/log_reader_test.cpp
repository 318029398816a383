#include "daemon/log_reader.h"

#include <doctest/doctest.h>

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
