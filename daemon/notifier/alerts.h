// What happens, turned into notifications (docs/notifications.md): a build's end (newly failing,
// fixed, verification failed, published — a failure's changes since the last good build found
// and stored first), a builder going down, the queue held for memory or disk, and the summary of
// a nightly once all of its builds have ended.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/job.h"

namespace boost::asio {
class io_context;
}

namespace ptbuild {

class Clock;
class Notifier;
class OffLoop;
class Scheduler;
class Store;

class Alerts {
 public:
  Alerts(boost::asio::io_context& io, Store& store, Scheduler& scheduler, OffLoop& off_loop,
         Notifier& notifier, Clock& clock, const Config& config);
  ~Alerts();
  // Listens to the scheduler's job events, and looks at the builders and the queue every few seconds.
  void start();

 private:
  void on_job(const Job& job);
  void ended(const Job& job, const std::vector<std::string>& events, const std::vector<std::string>& changes);
  void look();
  std::string dashboard() const;

  struct Timer;
  std::unique_ptr<Timer> timer_;
  Store& store_;
  Scheduler& scheduler_;
  OffLoop& off_loop_;
  Notifier& notifier_;
  Clock& clock_;
  const Config& config_;              // the daemon's, which a SIGHUP changes in place
  std::map<std::string, bool> down_;  // builder -> it was down at the last look
  bool held_ = false;
  // The nightly's builds that ended, until none of its jobs is left queued or running.
  struct Nightly {
    int succeeded = 0, failed = 0;
    std::vector<std::string> newly_failing, fixed;  // "variant: first change" / variant
  } nightly_;
  int finding_changes_ = 0;  // failures whose changes are being found off the loop
};

}  // namespace ptbuild
