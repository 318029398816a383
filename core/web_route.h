// What an HTTP request to the dashboard asks for (docs/web.md): pure, so it is unit-tested and fuzzed
// without a socket. The daemon's web server acts on the Route.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace ptbuild::web {

enum class RouteKind {
  page,     // the dashboard itself
  asset,    // name: "app.js", "app.css"
  api,      // name: a read-only op that answers at once; args from the query
  events,   // name: a read-only op that answers with events (log, wait, watch), as server-sent events
  metrics,  // Prometheus text
  refused,  // status and message say why
};

struct Route {
  RouteKind kind = RouteKind::refused;
  std::string name;
  nlohmann::json args = nlohmann::json::object();
  int status = 200;     // of a refused request: 400, 403, 404, 405, 414
  std::string message;  // of a refused request
};

inline constexpr size_t kMaxTarget = 4096;

// `[web] listen`: "HOST:PORT" with an IP address ("127.0.0.1:8460", "[::1]:8460"); "" is off.
struct ListenAddress {
  std::string host;
  uint16_t port = 0;  // 0: any free port (the daemon logs which)
};
// The address, or why it is not one.
std::variant<ListenAddress, std::string> parse_listen(std::string_view text);

// Which Host headers the dashboard answers. A page of another site whose name an attacker rebinds
// to this address (DNS rebinding) is sent with that site's name as its Host, and is refused: only
// loopback names and addresses, the listen address, IP literals when it listens on every address
// (a literal cannot be rebound), and the names the operator lists are answered.
struct HostPolicy {
  std::string listen_host;         // [web] listen's host, as parse_listen gives it
  std::vector<std::string> names;  // [web] hosts
};
// `host`: the Host header as sent ("127.0.0.1:8460", "[::1]:8460", "ptbuild.lan").
bool host_allowed(std::string_view host, const HostPolicy& policy);

// `method` as sent ("GET"); `target` the request target ("/api/show?job=12").
Route route(std::string_view method, std::string_view target);

// Query values become JSON the way the socket's ops expect them: digits an integer, true/false a
// boolean, "targets" and "jobs" a list split at commas, anything else a string.
nlohmann::json query_args(std::string_view query, std::string* error);

}  // namespace ptbuild::web
