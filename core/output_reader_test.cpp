#include "core/output_reader.h"

#include <doctest/doctest.h>

using namespace ptbuild;

namespace {
// Feeds `text` in chunks of `size` bytes, as the runner reads a pipe.
void feed_in_chunks(OutputReader& reader, std::string_view text, size_t size) {
  for (size_t at = 0; at < text.size(); at += size) reader.feed(text.substr(at, size));
}
}  // namespace

TEST_CASE("one pass over a build's output finds its progress, its failure and its hash mismatches") {
  const std::string log =
      "these 2 derivations will be built:\n"
      "building '/nix/store/aaaa-source.drv'...\n"
      "error: hash mismatch in fixed-output derivation '/nix/store/aaaa-source.drv':\n"
      "         specified: sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
      "            got:    sha256-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=\n"
      "building '/nix/store/bbbb-torch.drv'...\n"
      "torch> [1/3] Building CXX object op_1.cpp.o\n"
      "torch> \x1b[1m[2/3] Building CXX object op_2.cpp.o\x1b[0m\n"
      "torch> -- Could NOT find CUDA (missing: CUDA_TOOLKIT_ROOT_DIR)\n"
      "torch> [3/3] Linking";  // the last line has no newline: finish() reads it
  for (size_t size : {size_t{1}, size_t{7}, size_t{64}, log.size()}) {
    CAPTURE(size);
    OutputReader reader(parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512"));
    feed_in_chunks(reader, log, size);
    REQUIRE(reader.progress());
    CHECK(reader.progress()->done == 2);  // "[3/3]" has no newline yet: it may go on
    CHECK(reader.progress()->total == 3);
    reader.finish();
    CHECK(reader.progress()->done == 3);
    REQUIRE(reader.mismatches().size() == 1);
    CHECK(reader.mismatches()[0].got == "sha256-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=");
    std::optional<Failure> f = reader.scanner().diagnose(1);
    REQUIRE(f);
    CHECK(f->failure_class == failure_class::kHashMismatch);
    CHECK(reader.scanner().tail().find("[3/3] Linking") != std::string::npos);
  }
}

TEST_CASE("a ninja status line is never read as why the build failed") {
  OutputReader reader(parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512"));
  CHECK(reader.feed(
      "torch> [7/9] Building CXX object error_handling.cpp.o hash mismatch in fixed-output derivation '/x'\n"));
  CHECK_FALSE(
      reader.feed("torch> [7/9] Building CXX object error_handling.cpp.o\n"));  // no change in progress
  reader.finish();
  CHECK(reader.mismatches().empty());
  CHECK(reader.scanner().diagnose(0) == std::nullopt);
  REQUIRE(reader.progress());
  CHECK(reader.progress()->done == 7);
}

TEST_CASE("the last lines outlive the buffer they were read from, as the runner reuses one") {
  OutputReader reader(parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512"));
  std::string buffer;
  auto feed = [&](std::string_view text) {
    buffer.assign(text);
    reader.feed(buffer);
    buffer.assign(buffer.size(), '#');  // the next read overwrites it
  };
  for (int i = 1; i <= 40; ++i)
    feed("torch> [" + std::to_string(i) + "/90] Building CXX object op_" + std::to_string(i) + ".cpp.o\n");
  feed(
      "torch> \x1b[31mcc1plus: fatal error: Killed signal terminated program\x1b[0m\ntorch> [41/90] Building");
  feed(" CXX object op_41.cpp.o\n" + std::string(500, 'w') + "\n");
  reader.finish();
  std::string tail = reader.scanner().tail();
  CHECK(tail.find('#') == std::string::npos);
  CHECK(tail.find("[40/90] Building CXX object op_40.cpp.o") != std::string::npos);
  CHECK(tail.find("torch> [41/90] Building CXX object op_41.cpp.o") !=
        std::string::npos);                                            // across two chunks
  CHECK(tail.find(std::string(400, 'w') + "…") != std::string::npos);  // clipped
  CHECK(tail.find("[25/90]") == std::string::npos);                    // 15 lines kept
  std::optional<Failure> f = reader.scanner().diagnose(1);
  REQUIRE(f);
  CHECK(f->failure_class == failure_class::kOutOfMemory);
  // The lines before the one that says why, as they were.
  REQUIRE(f->excerpt.find("[39/90] Building CXX object op_39.cpp.o") != std::string::npos);
  CHECK(f->excerpt.find('#') == std::string::npos);
}
