// What an op handler sees of the client it serves.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>

#include <nlohmann/json_fwd.hpp>

namespace ptbuild {

struct Caller {
  pid_t pid = 0;
  uid_t uid = 0;
  bool may_change = false;  // root, the daemon's user, or a member of admin_group
};

// One client connection. Handlers that answer later (log -f, wait) keep a shared_ptr to it and
// send when they have something; sending to a closed channel is a no-op.
class Channel {
 public:
  virtual ~Channel() = default;
  virtual void send(const nlohmann::json& line) = 0;
  virtual bool is_open() const = 0;
  // Bytes sent but not yet taken by the client.
  virtual size_t backlog() const = 0;
  // Calls `ready` once the backlog is at most `low_water` bytes (at once if it already is);
  // never if the client goes away. One waiter at a time.
  virtual void when_drained(size_t low_water, std::function<void()> ready) = 0;
};

}  // namespace ptbuild
