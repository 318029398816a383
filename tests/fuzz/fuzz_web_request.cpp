// What a browser (or anything else) may send to the dashboard's port: the bytes go through
// Beast's request parser with the daemon's limits, and a request that parses through the routes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/web_route.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  http::request_parser<http::string_body> parser;
  parser.header_limit(8 * 1024);
  parser.body_limit(4 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (!ec && parser.is_header_done()) {
    const auto& req = parser.get();
    ptbuild::web::Route r = ptbuild::web::route(req.method_string(), req.target());
    if (r.kind == ptbuild::web::RouteKind::refused && (r.status < 400 || r.status > 499 || r.message.empty()))
      __builtin_trap();
  }
  // The routes alone, on any text as a target, and the listen address parser.
  (void)ptbuild::web::route("GET", bytes);
  (void)ptbuild::web::parse_listen(bytes);
  return 0;
}
