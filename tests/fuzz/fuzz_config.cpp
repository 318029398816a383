// The config reader: any TOML text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ptbuild::Environment env;
  env.home = "/home/fuzz";
  env.cwd = "/srv/repo";
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ptbuild::ConfigResult r = ptbuild::parse_config(text, "fuzz.toml", "/etc/ptbuild", env);
  if (auto* c = std::get_if<ptbuild::Config>(&r)) (void)ptbuild::render_config(*c);
  return 0;
}
