// The Unix socket: accepts clients, reads JSON lines (1 MiB cap), answers in order.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/protocol.h"
#include "daemon/server/channel.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

// Handles one request. Returns the result to send as the reply, or nullopt when the handler
// took the channel to reply later. Throws OpError for a failed request.
using Dispatch = std::function<std::optional<nlohmann::json>(
    const protocol::Request&, const Caller&, const std::shared_ptr<Channel>&)>;

struct OpError {
  std::string code;
  std::string message;
};

class Server {
 public:
  Server(boost::asio::io_context& io, Dispatch dispatch);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Returns an error message, or "".
  std::string listen(const std::string& path, const std::string& admin_group);
  // Stops accepting and closes every client.
  void stop();
  void set_admin_group(const std::string& group);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ptbuild
