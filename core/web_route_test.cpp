#include "core/web_route.h"

#include <doctest/doctest.h>

using namespace ptbuild::web;

TEST_CASE("web routes: pages, read-only ops with typed query arguments, metrics") {
  CHECK(route("GET", "/").kind == RouteKind::page);
  CHECK(route("HEAD", "/index.html").kind == RouteKind::page);
  Route js = route("GET", "/app.js");
  CHECK(js.kind == RouteKind::asset);
  CHECK(js.name == "app.js");
  CHECK(route("GET", "/metrics").kind == RouteKind::metrics);

  Route show = route("GET", "/api/show?job=12");
  CHECK(show.kind == RouteKind::api);
  CHECK(show.name == "show");
  CHECK(show.args == nlohmann::json{{"job", 12}});
  Route status = route("GET", "/api/status?targets=sm90-avx512,sm86%2Davx2");
  CHECK(status.args["targets"] == nlohmann::json{"sm90-avx512", "sm86-avx2"});
  Route log = route("GET", "/events/log?job=3&tail=200&follow=true");
  CHECK(log.kind == RouteKind::events);
  CHECK(log.args == nlohmann::json{{"job", 3}, {"tail", 200}, {"follow", true}});
  CHECK(route("GET", "/events/watch").kind == RouteKind::events);
  CHECK(route("GET", "/api/jobs?state=failed&limit=5").args ==
        nlohmann::json{{"state", "failed"}, {"limit", 5}});
  // Numbers as numbers, so the op refuses them by their range: a negative tail, the largest id.
  CHECK(route("GET", "/events/log?job=9223372036854775807&tail=-5").args ==
        nlohmann::json{{"job", INT64_MAX}, {"tail", -5}});
  CHECK(route("GET", "/api/show?job=99999999999999999999").args["job"] == "99999999999999999999");
}

TEST_CASE("web routes: what is refused gets the status code that says why") {
  auto refused = [](std::string_view method, std::string_view target) {
    Route r = route(method, target);
    CHECK(r.kind == RouteKind::refused);
    CHECK(!r.message.empty());
    return r.status;
  };
  CHECK(refused("POST", "/api/queue") == 405);
  CHECK(refused("DELETE", "/") == 405);
  CHECK(refused("GET", "/api/queue?targets=all") == 403);  // changes things: never over HTTP
  CHECK(refused("GET", "/api/nightly") == 403);
  CHECK(refused("GET", "/api/nosuchop") == 404);
  CHECK(refused("GET", "/etc/passwd") == 404);
  CHECK(refused("GET", "/../etc/passwd") == 400);
  CHECK(refused("GET", "/api/%2e%2e/x") == 400);
  CHECK(refused("GET", "/api/log?job=1") == 400);  // answers with events: /events/log
  CHECK(refused("GET", "/events/status") == 400);  // answers at once: /api/status
  CHECK(refused("GET", "/api/show?job=1&job=2") == 400);
  CHECK(refused("GET", "/api/show?job=%zz") == 400);
  CHECK(refused("GET", "/api/show?job=%4") == 400);
  CHECK(refused("GET", "/api/show?=1") == 400);
  CHECK(refused("GET", "*") == 400);
  CHECK(refused("GET", "/" + std::string(kMaxTarget, 'a')) == 414);
}

TEST_CASE("web listen addresses: IPv4, bracketed IPv6, port 0 - names and bad ports refused") {
  auto ok = [](std::string_view text) { return std::get<ListenAddress>(parse_listen(text)); };
  CHECK(ok("127.0.0.1:8460").host == "127.0.0.1");
  CHECK(ok("127.0.0.1:8460").port == 8460);
  CHECK(ok("[::1]:80").host == "::1");
  CHECK(ok("0.0.0.0:0").port == 0);
  auto bad = [](std::string_view text) { return std::get<std::string>(parse_listen(text)); };
  CHECK(bad("8460").find("HOST:PORT") != std::string::npos);
  CHECK(bad("localhost:8460").find("not an IP address") != std::string::npos);
  CHECK(bad("::1:8460").find("brackets") != std::string::npos);
  CHECK(bad("127.0.0.1:99999").find("not a number from 0 to 65535") != std::string::npos);
  CHECK(bad("127.0.0.1:http").find("not a number") != std::string::npos);
}

TEST_CASE("web hosts: loopback, the listen address and listed names are answered - rebound names are not") {
  HostPolicy local{"127.0.0.1", {}};
  CHECK(host_allowed("127.0.0.1:8460", local));
  CHECK(host_allowed("localhost:8460", local));
  CHECK(host_allowed("LOCALHOST.", local));
  CHECK(host_allowed("[::1]:8460", local));
  CHECK(host_allowed("127.0.0.2", local));
  CHECK_FALSE(host_allowed("attacker.example", local));  // DNS rebinding: answered with the jobs before
  CHECK_FALSE(host_allowed("attacker.example:8460", local));
  CHECK_FALSE(host_allowed("10.0.0.5:8460", local));
  CHECK_FALSE(host_allowed("", local));
  CHECK_FALSE(host_allowed("[::1", local));
  CHECK_FALSE(host_allowed("::1", local));  // IPv6 unbracketed is not a Host
  CHECK_FALSE(host_allowed("[evil.example]", local));

  HostPolicy lan{"10.0.0.5", {"ptbuild.lan"}};
  CHECK(host_allowed("10.0.0.5:8460", lan));
  CHECK(host_allowed("PTBUILD.lan:8460", lan));
  CHECK_FALSE(host_allowed("10.0.0.6:8460", lan));
  CHECK_FALSE(host_allowed("other.lan", lan));

  HostPolicy every{"0.0.0.0", {}};  // every address: any literal, no name but loopback's
  CHECK(host_allowed("192.168.1.9:8460", every));
  CHECK(host_allowed("[fe80::1]:8460", every));
  CHECK_FALSE(host_allowed("rebind.example", every));
}
