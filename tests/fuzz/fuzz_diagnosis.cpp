// The log classifier and progress parser: any build output, for a GPU and a CPU variant.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/diagnosis.h"
#include "core/progress.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view log(reinterpret_cast<const char*>(data), size);
  for (const char* name : {"pytorch-python313-cuda13_0-sm90-avx512", "pytorch-python313-cpu-avx2"}) {
    ptbuild::LogScanner scanner(ptbuild::parse_variant_name(name));
    ptbuild::ProgressTracker progress;
    size_t start = 0;
    while (start <= log.size()) {
      size_t nl = log.find('\n', start);
      std::string_view line =
          log.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      scanner.feed(line);
      (void)progress.feed(line);
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
    for (int code : {0, 1, 137}) (void)scanner.diagnose(code);
  }
  return 0;
}
