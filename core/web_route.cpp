#include "core/web_route.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "core/protocol.h"

namespace ptbuild::web {

namespace {

Route refuse(int status, std::string message) {
  Route r;
  r.status = status;
  r.message = std::move(message);
  return r;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX and '+' decoded; nullopt on a broken escape.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

nlohmann::json typed_value(const std::string& key, const std::string& value) {
  if (key == "targets" || key == "jobs") {
    nlohmann::json list = nlohmann::json::array();
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!item.empty()) list.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return list;
  }
  if (value == "true") return true;
  if (value == "false") return false;
  // A whole number (negative ones too, so that tail=-5 is refused for its range, not its type);
  // digits past 64 bits stay text, which the op refuses by name.
  int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (!value.empty() && ec == std::errc{} && end == value.data() + value.size()) return n;
  return value;
}

}  // namespace

nlohmann::json query_args(std::string_view query, std::string* error) {
  nlohmann::json args = nlohmann::json::object();
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    std::string_view pair =
        query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    start = amp == std::string_view::npos ? query.size() : amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq));
    auto value =
        percent_decode(eq == std::string_view::npos ? std::string_view("true") : pair.substr(eq + 1));
    if (!key || !value) {
      *error = "broken %-escape in the query";
      return nullptr;
    }
    if (key->empty()) {
      *error = "a query parameter without a name";
      return nullptr;
    }
    if (args.contains(*key)) {
      *error = "query parameter '" + *key + "' given twice";
      return nullptr;
    }
    args[*key] = typed_value(*key, *value);
  }
  return args;
}

std::variant<ListenAddress, std::string> parse_listen(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return std::string(
        "expected HOST:PORT with an IP address (\"127.0.0.1:8460\", \"[::1]:8460\"), or \"\" to turn it off");
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  else if (host.find(':') != std::string_view::npos)
    return std::string("an IPv6 address goes in brackets: \"[::1]:8460\"");
  bool ip = host.find_first_not_of("0123456789.") == std::string_view::npos ||
            host.find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos;
  if (host.empty() || !ip)
    return "'" + std::string(host) + "' is not an IP address (a name would depend on DNS at start)";
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
    return "port '" + std::string(port) + "' is not a number from 0 to 65535";
  return ListenAddress{std::string(host), static_cast<uint16_t>(value)};
}

Route route(std::string_view method, std::string_view target) {
  if (method != "GET" && method != "HEAD")
    return refuse(405, "the dashboard is read-only: only GET and HEAD");
  if (target.size() > kMaxTarget)
    return refuse(414, "request target longer than " + std::to_string(kMaxTarget) + " bytes");
  if (target.empty() || target.front() != '/') return refuse(400, "the request target must be a path");
  size_t question = target.find('?');
  std::string_view raw_path = target.substr(0, question);
  std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  auto decoded = percent_decode(raw_path);
  if (!decoded) return refuse(400, "broken %-escape in the path");
  const std::string& path = *decoded;
  // No file is ever served from disk, but a path with a ".." segment is refused outright so no
  // later change can turn it into one.
  for (size_t at = 0; at < path.size();) {
    size_t slash = path.find('/', at);
    std::string_view segment =
        std::string_view(path).substr(at, slash == std::string::npos ? std::string::npos : slash - at);
    if (segment == "..") return refuse(400, "'..' in the path");
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
  if (path.find('\0') != std::string::npos) return refuse(400, "NUL in the path");

  Route r;
  if (path == "/" || path == "/index.html") {
    r.kind = RouteKind::page;
    return r;
  }
  if (path == "/app.js" || path == "/app.css") {
    r.kind = RouteKind::asset;
    r.name = path.substr(1);
    return r;
  }
  if (path == "/metrics") {
    r.kind = RouteKind::metrics;
    return r;
  }
  for (auto [prefix, kind] : {std::pair{std::string_view("/api/"), RouteKind::api},
                              std::pair{std::string_view("/events/"), RouteKind::events}}) {
    if (!path.starts_with(prefix)) continue;
    std::string name = path.substr(prefix.size());
    const protocol::OpSpec* op = protocol::find_op(name);
    if (!op) return refuse(404, "unknown op '" + name + "'");
    if (op->changes_things)
      return refuse(403, "'" + name + "' changes things: use the ptbuild client, not the web page");
    if (kind == RouteKind::api && op->replies_later)
      return refuse(400, "'" + name + "' answers with events: ask /events/" + name);
    if (kind == RouteKind::events && !op->replies_later)
      return refuse(400, "'" + name + "' answers at once: ask /api/" + name);
    std::string error;
    r.args = query_args(query, &error);
    if (!error.empty()) return refuse(400, error);
    r.kind = kind;
    r.name = name;
    return r;
  }
  return refuse(404, "no page at " + path);
}

}  // namespace ptbuild::web

namespace ptbuild::web {

namespace {
enum class IpKind { none, loopback, any, other };

IpKind ip_kind(const std::string& text) {
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    uint32_t a = ntohl(v4.s_addr);
    if ((a >> 24) == 127) return IpKind::loopback;
    return a == 0 ? IpKind::any : IpKind::other;
  }
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return IpKind::loopback;
    return IN6_IS_ADDR_UNSPECIFIED(&v6) ? IpKind::any : IpKind::other;
  }
  return IpKind::none;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}
}  // namespace

bool host_allowed(std::string_view host, const HostPolicy& policy) {
  // The name without its port: "[::1]:8460" → "::1", "a.lan:80" → "a.lan".
  std::string name;
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return false;
    name = std::string(host.substr(1, close - 1));
    if (ip_kind(name) == IpKind::none) return false;
  } else {
    if (std::count(host.begin(), host.end(), ':') > 1) return false;  // IPv6 must be bracketed
    name = lower(host.substr(0, host.find(':')));
    if (name.ends_with('.')) name.pop_back();  // "localhost." is localhost
  }
  if (name.empty()) return false;
  if (name == "localhost") return true;
  IpKind kind = ip_kind(name);
  if (kind == IpKind::loopback) return true;
  if (kind != IpKind::none &&
      (ip_kind(policy.listen_host) == IpKind::any || name == lower(policy.listen_host)))
    return true;
  if (kind == IpKind::none)
    for (const std::string& allowed : policy.names)
      if (name == lower(allowed)) return true;
  return false;
}

}  // namespace ptbuild::web
