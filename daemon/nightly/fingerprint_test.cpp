#include "daemon/nightly/fingerprint.h"

#include <doctest/doctest.h>

#include "core/nix_imports.h"
#include "tests/support/temp_dir.h"

using namespace ptbuild;

TEST_CASE("nix imports: relative path literals, not strings or URLs") {
  auto paths = relative_paths_in(
      "{ }: let lib = import ./lib/mkTorch.nix { }; p = ../common; in {\n"
      "  patches = [ ./patches/fix-sm121.patch ];\n"
      "  url = \"https://example.org/./x.nix\"; s = \"./not-a-path.nix\";\n}\n");
  CHECK(paths == std::vector<std::string>{"./lib/mkTorch.nix", "../common", "./patches/fix-sm121.patch"});
}

TEST_CASE("file fingerprint: the recipe and what it imports - transitively - nothing else") {
  testing::TempDir repo;
  repo.write(".flox/pkgs/a.nix", "{ }: import ./lib/mk.nix { patch = ./patches/p.patch; }\n");
  repo.write(".flox/pkgs/lib/mk.nix", "{ patch }: import ./deep { }\n");
  repo.write(".flox/pkgs/lib/deep/default.nix", "{ }: 1\n");
  repo.write(".flox/pkgs/patches/p.patch", "--- a\n+++ b\n");
  repo.write(".flox/pkgs/other.nix", "{ }: 2\n");
  std::string before = file_fingerprint(repo.path(), ".flox/pkgs/a.nix");
  CHECK(before.starts_with("files:"));
  repo.write(".flox/pkgs/other.nix", "{ }: 3\n");  // not read by a.nix
  CHECK(file_fingerprint(repo.path(), ".flox/pkgs/a.nix") == before);
  for (const char* read :
       {".flox/pkgs/lib/deep/default.nix", ".flox/pkgs/patches/p.patch", ".flox/pkgs/lib/mk.nix"}) {
    std::string was = file_fingerprint(repo.path(), ".flox/pkgs/a.nix");
    repo.write(read, "changed\n");
    CHECK_MESSAGE(file_fingerprint(repo.path(), ".flox/pkgs/a.nix") != was, read);
  }
}
