// The client's end of the socket protocol: blocking, one request at a time.
#pragma once

#include "core/protocol.h"

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace ptbuild::client {

// The daemon could not be reached (exit code 3).
struct Unreachable {
  std::string message;
};

// The daemon answered with an error object.
struct RemoteError {
  std::string code;
  std::string message;
};

class Connection {
 public:
  // How long the client waits for the daemon's hello and for each reply: $PTBUILD_TIMEOUT
  // seconds, else 60. A daemon that never answers is Unreachable, not a hang.
  static int reply_timeout_ms();

  // Connects and exchanges hellos; throws Unreachable.
  explicit Connection(const std::string& socket_path);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends a request and returns its result; throws RemoteError or Unreachable (also when no
  // reply comes within `timeout_ms`; -1 = wait as long as it takes).
  // Events pushed for the request before its reply go to `on_event` (when given).
  nlohmann::json call(const protocol::OpSpec& op, const nlohmann::json& args = nlohmann::json::object(),
                      int timeout_ms = reply_timeout_ms(),
                      const std::function<void(const nlohmann::json&)>& on_event = nullptr);
  // For ops that push events: sends the request and returns its id; read with next().
  int64_t send(const protocol::OpSpec& op, const nlohmann::json& args);
  // The next line from the daemon, or nullopt when it closed the connection or the timeout
  // (milliseconds, -1 = none) passed.
  std::optional<nlohmann::json> next(int timeout_ms = -1);
  bool timed_out() const { return timed_out_; }

  const nlohmann::json& server_hello() const { return hello_; }

 private:
  std::optional<std::string> read_line(int timeout_ms);
  bool timed_out_ = false;
  std::string path_;
  int fd_ = -1;
  int64_t next_id_ = 1;
  std::string buffer_;
  nlohmann::json hello_;
};

}  // namespace ptbuild::client
