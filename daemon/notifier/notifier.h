// Delivers notifications (docs/notifications.md) to the [[notify]] hooks that asked for their event:
// a command run with the event's JSON on stdin, a webhook POSTed it. Each delivery runs off the
// loop, is tried again with back-off when it fails, and a hook that keeps failing is logged,
// counted and shown in `status` — never fatal, and nothing waits for it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/notify.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

class Clock;
class OffLoop;

// Where one delivery goes: a hook's command or its webhook (a hook may have both).
struct NotifyTarget {
  bool webhook = false;
  std::string value;  // the command, or the URL
  std::string name() const { return (webhook ? "webhook " : "command ") + value; }
};
std::vector<NotifyTarget> targets_of(const Config::Notify& hook);

// One try, blocking (off the loop): "" when it was delivered, else what went wrong.
std::string deliver_once(const NotifyTarget& target, const std::string& body);

class Notifier {
 public:
  Notifier(boost::asio::io_context& io, OffLoop& off_loop, Clock& clock)
      : io_(io), off_loop_(off_loop), clock_(clock) {}
  // The hooks of the config (at start, and after a SIGHUP): deliveries under way finish as they began.
  void configure(std::vector<Config::Notify> hooks);
  void send(const NotifyEvent& event);

  struct HookStatus {
    std::string target;  // NotifyTarget::name()
    int64_t delivered = 0;
    int64_t failed = 0;      // deliveries given up after every try
    std::string last_error;  // of the last try that failed
    std::string last_error_at;
    bool failing = false;  // its last delivery failed (or is being tried again)
  };
  std::vector<HookStatus> status() const;
  // (event, result) -> deliveries; result "delivered", "retried" (a try that failed, tried again)
  // or "failed" (given up).
  std::map<std::pair<std::string, std::string>, int64_t> counts() const { return counts_; }

 private:
  struct Delivery;
  void attempt(std::shared_ptr<Delivery> delivery);
  HookStatus& status_of(const std::string& target);

  boost::asio::io_context& io_;
  OffLoop& off_loop_;
  Clock& clock_;
  std::vector<Config::Notify> hooks_;
  std::vector<HookStatus> status_;
  std::map<std::pair<std::string, std::string>, int64_t> counts_;
};

}  // namespace ptbuild
