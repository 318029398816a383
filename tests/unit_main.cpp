#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  // The daemon's modules log what they do; in unit tests that is noise.
  spdlog::set_level(spdlog::level::off);
  return doctest::Context(argc, argv).run();
}
