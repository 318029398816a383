// The daemon's side of each protocol op (docs/protocol.md, docs/client.md): one function per op,
// in files by family under daemon/server/ops/ (jobs, status, fleet, publish), each building the
// op's typed reply (core/replies.h). The socket and the web page's /api/* both come here.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include <nlohmann/json_fwd.hpp>

#include "core/config.h"
#include "daemon/nightly/nightly.h"
#include "core/protocol.h"
#include "daemon/server/channel.h"
#include "daemon/server/server.h"

namespace ptbuild {

class Bisector;
class Clock;
class Notifier;
class OffLoop;
class Store;
class Scheduler;

// What the ops act on. The config is the daemon's current one (it changes on SIGHUP).
struct OpsContext {
  Store& store;
  const Config& config;
  Scheduler& scheduler;
  std::function<void()> exit_daemon;  // for drain, once the running builds have ended
  // Plans a nightly run (daemon/nightly): targets, how to resolve them, what to do with the plan.
  std::function<void(std::vector<std::string>, std::function<Resolution(const std::vector<std::string>&)>,
                     std::function<void(size_t, size_t)>, std::function<void(NightlyPlan)>)>
      plan_nightly;
  // Whether git tracks a variant's recipe (flox builds only tracked files): nullopt where the
  // repo is no git checkout or it was not looked at yet.
  std::function<std::optional<bool>(const std::string& variant)> tracked;
  Clock& clock;
  OffLoop& off_loop;  // for what reads files (a recipe's sha, for publish)
  // The last `status` of every job, served again while nothing it shows has changed.
  std::shared_ptr<struct StatusCache> last_status = nullptr;
  const Notifier* notifier = nullptr;  // its hooks' deliveries, for `status`
  Bisector* bisector = nullptr;
};

class Ops {
 public:
  explicit Ops(OpsContext ctx) : ctx_(std::move(ctx)) {}
  std::optional<OpResult> handle(const protocol::Request& req, const Caller& caller,
                                 const std::shared_ptr<Channel>& channel);

 private:
  OpsContext ctx_;
};

}  // namespace ptbuild
