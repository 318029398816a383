// The dashboard and metrics over HTTP (docs/web.md), on the daemon's one event loop. Read-only: it
// serves the socket's read-only ops through the same Dispatch, so each op has one implementation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/web_route.h"
#include "daemon/server/server.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

class WebServer {
 public:
  // `metrics` renders GET /metrics when asked.
  WebServer(boost::asio::io_context& io, Dispatch dispatch, std::function<std::string()> metrics);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // Binds and starts accepting requests for the hosts `extra_names` and the address allow
  // (web::host_allowed). Returns an error message, or "".
  std::string listen(const web::ListenAddress& at, std::vector<std::string> extra_names);
  uint16_t port() const;  // the bound port (listen port 0 picks one)
  // Stops accepting and closes every connection.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ptbuild
