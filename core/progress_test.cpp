#include "core/progress.h"

#include <doctest/doctest.h>

using namespace ptbuild;

TEST_CASE("progress: ninja counts behind Nix's prefix") {
  ProgressTracker t;
  CHECK_FALSE(t.feed("-- Configuring done"));
  CHECK(
      t.feed(
          "pytorch-python313-cpu-avx2> [12/4567] Building CXX object c10/CMakeFiles/c10.dir/core/Allocator.cpp.o") ==
      Progress{12, 4567});
  CHECK_FALSE(t.feed("pytorch-python313-cpu-avx2> warning: unused variable"));
  CHECK(t.feed("[4567/4567] Linking CXX shared library lib/libtorch.so") == Progress{4567, 4567});
  CHECK_FALSE(t.feed("a[b/c] [x/3] [5/3]"));  // not counts, or impossible ones
}

TEST_CASE("progress: Nix's derivation counts until ninja speaks") {
  ProgressTracker t;
  CHECK(t.feed("these 3 derivations will be built:") == Progress{0, 3});
  CHECK_FALSE(t.feed("  /nix/store/aaa-source.drv"));
  CHECK_FALSE(t.feed("building '/nix/store/aaa-source.drv'..."));  // 0 done while the first builds
  CHECK(t.feed("building '/nix/store/bbb-magma.drv'...") == Progress{1, 3});
  CHECK(t.feed("torch> [1/10] cc") == Progress{1, 10});
  CHECK_FALSE(t.feed("building '/nix/store/ccc-torch.drv'..."));  // ninja wins from now on
  CHECK(t.current() == Progress{1, 10});
}
