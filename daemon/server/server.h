// The Unix socket: accepts clients, reads JSON lines (1 MiB cap), answers in order.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <nlohmann/json_fwd.hpp>

#include "core/protocol.h"
#include "daemon/server/channel.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

// A result already written as JSON text (protocol::json_text), shared: a reply that many requests
// get unchanged (`status`, asked several times a second by every watch and dashboard) is
// serialized once, not once per request.
struct ResultText {
  std::shared_ptr<const std::string> text;
};
// What an op answers: a JSON value, or one already written as text.
using OpResult = std::variant<nlohmann::json, ResultText>;
// The result as JSON text.
std::string result_text(const OpResult& result);

// Handles one request. Returns the result to send as the reply, or nullopt when the handler
// took the channel to reply later. Throws OpError for a failed request.
using Dispatch = std::function<std::optional<OpResult>(const protocol::Request&, const Caller&,
                                                       const std::shared_ptr<Channel>&)>;

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
