// The protocol reader: any line a client may send.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto parsed = ptbuild::protocol::parse_request(line);
  if (auto* req = std::get_if<ptbuild::protocol::Request>(&parsed)) {
    try {
      (void)ptbuild::protocol::arg_strings(req->args, "targets");
      (void)ptbuild::protocol::arg_int(req->args, "priority", 0);
      (void)ptbuild::protocol::arg_bool(req->args, "force");
      (void)ptbuild::protocol::arg_string(req->args, "reason");
    } catch (const ptbuild::protocol::ArgError&) {
    }
  }
  return 0;
}
