#include "local/recipes.h"

#include <doctest/doctest.h>

#include "tests/support/temp_dir.h"

using namespace ptbuild;

TEST_CASE("recipes: <name>.nix - <name>/default.nix and nested packages - helpers are not packages") {
  testing::TempDir repo;
  repo.write(".flox/pkgs/pytorch-python313-cuda13_0-sm90-avx512.nix", "{}");
  repo.write(".flox/pkgs/pytorch-python313-cpu-avx2/default.nix", "{}");
  repo.write(".flox/pkgs/a/b/default.nix", "{}");
  repo.write(".flox/pkgs/lib/mkPyTorchCUDA.nix", "{}");
  repo.write(".flox/pkgs/a/helper.nix", "{}");
  repo.write(".flox/pkgs/README.md", "not nix");
  repo.write(".flox/pkgs/default.nix", "{}");
  RecipeScan scan = scan_recipes(repo.path(), ".flox/pkgs");
  CHECK(scan.error.empty());
  REQUIRE(scan.recipes.size() == 3);
  CHECK(scan.recipes[0].package == "a.b");
  CHECK(scan.recipes[0].file == ".flox/pkgs/a/b/default.nix");
  CHECK(scan.recipes[1].package == "pytorch-python313-cpu-avx2");
  CHECK(scan.recipes[1].file == ".flox/pkgs/pytorch-python313-cpu-avx2/default.nix");
  CHECK(scan.recipes[2].package == "pytorch-python313-cuda13_0-sm90-avx512");
  CHECK(scan.recipes[2].file == ".flox/pkgs/pytorch-python313-cuda13_0-sm90-avx512.nix");
}

TEST_CASE("a missing recipe folder is reported - not fatal") {
  testing::TempDir repo;
  RecipeScan scan = scan_recipes(repo.path(), ".flox/pkgs");
  CHECK(scan.recipes.empty());
  CHECK(scan.error.find("does not exist") != std::string::npos);
}
