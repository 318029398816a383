#include "daemon/notifier/notifier.h"
#include "core/protocol.h"

#include <algorithm>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/text.h"
#include "daemon/command.h"
#include "daemon/runner/off_loop.h"

namespace ptbuild {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
// A hook is somebody else's program or server: it gets this long, then the try has failed (a
// graceful stop waits for a try under way, within systemd's stop timeout).
constexpr auto kCommandTimeout = std::chrono::seconds(30);
constexpr auto kWebhookTimeout = std::chrono::seconds(10);

std::string post(const std::string& url, const std::string& body) {
  std::optional<HttpUrl> u = parse_http_url(url);
  if (!u) return "not an http:// URL";
  asio::io_context io;  // this thread's own
  asio::ip::tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::string_body> request{http::verb::post, u->target, 11};
  request.set(http::field::host, u->host + ":" + u->port);
  request.set(http::field::user_agent, "ptbuildd/" PTBUILD_VERSION);
  request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  http::response<http::string_body> response;
  std::string error;
  auto failed = [&](const char* what, const beast::error_code& ec) {
    error = std::string(what) + ": " + ec.message();
  };
  stream.expires_after(kWebhookTimeout);
  resolver.async_resolve(
      u->host, u->port, [&](beast::error_code resolved, asio::ip::tcp::resolver::results_type found) {
        if (resolved) return failed("resolving the host", resolved);
        stream.async_connect(found, [&](beast::error_code connected, const asio::ip::tcp::endpoint&) {
          if (connected) return failed("connecting", connected);
          http::async_write(stream, request, [&](beast::error_code sent, size_t) {
            if (sent) return failed("sending", sent);
            http::async_read(stream, buffer, response, [&](beast::error_code read, size_t) {
              if (read) failed("reading the answer", read);
            });
          });
        });
      });
  // The resolver is not bound by the stream's expiry: the whole is.
  io.run_for(kWebhookTimeout + std::chrono::seconds(1));
  if (!io.stopped()) return "no answer in " + std::to_string(kWebhookTimeout.count()) + "s";
  if (!error.empty()) return error;
  unsigned status = response.result_int();
  if (status / 100 != 2)
    return "HTTP " + std::to_string(status) + " " + std::string(trim(response.body()).substr(0, 200));
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  return "";
}
}  // namespace

std::vector<NotifyTarget> targets_of(const Config::Notify& hook) {
  std::vector<NotifyTarget> out;
  if (!hook.command.empty()) out.push_back({false, hook.command});
  if (!hook.webhook.empty()) out.push_back({true, hook.webhook});
  return out;
}

std::string deliver_once(const NotifyTarget& target, const std::string& body) {
  if (target.webhook) return post(target.value, body);
  CommandResult r = run_command_with_input({"/bin/sh", "-c", target.value}, "/", body, kCommandTimeout);
  if (r.ok()) return "";
  std::string err(trim(r.err));
  return (r.exit_code < 0 ? "it could not start" : "exit " + std::to_string(r.exit_code)) +
         (err.empty() ? "" : ": " + err.substr(0, 300));
}

struct Notifier::Delivery {
  Delivery(asio::io_context& io, NotifyTarget t, std::string e, std::string b)
      : target(std::move(t)), event(std::move(e)), body(std::move(b)), timer(io) {}
  NotifyTarget target;
  std::string event;
  std::string body;
  int tries = 0;
  asio::steady_timer timer;
};

void Notifier::configure(std::vector<Config::Notify> hooks) {
  hooks_ = std::move(hooks);
  std::vector<HookStatus> kept;
  for (const Config::Notify& hook : hooks_)
    for (const NotifyTarget& t : targets_of(hook)) {
      auto old = std::ranges::find(status_, t.name(), &HookStatus::target);
      kept.push_back(old != status_.end() ? *old : HookStatus{t.name()});
    }
  status_ = std::move(kept);
}

void Notifier::send(const NotifyEvent& event) {
  std::string body = protocol::json_text(to_json(event));
  for (const Config::Notify& hook : hooks_) {
    if (std::ranges::find(hook.on, event.event) == hook.on.end()) continue;
    for (NotifyTarget& t : targets_of(hook))
      attempt(std::make_shared<Delivery>(io_, std::move(t), event.event, body));
  }
}

Notifier::HookStatus& Notifier::status_of(const std::string& target) {
  auto it = std::ranges::find(status_, target, &HookStatus::target);
  if (it != status_.end()) return *it;
  status_.push_back({target});  // a hook a reload removed while its delivery was under way
  return status_.back();
}

void Notifier::attempt(std::shared_ptr<Delivery> d) {
  ++d->tries;
  off_loop_.run([target = d->target, body = d->body] { return deliver_once(target, body); },
                [this, d](std::string error) {
                  HookStatus& s = status_of(d->target.name());
                  if (error.empty()) {
                    ++s.delivered;
                    s.failing = false;
                    ++counts_[{d->event, "delivered"}];
                    return;
                  }
                  s.failing = true;
                  s.last_error = error;
                  s.last_error_at = clock_.rfc3339();
                  if (d->tries >= kNotifyTries) {
                    ++s.failed;
                    ++counts_[{d->event, "failed"}];
                    spdlog::warn("notify: {} of {}: gave up after {} tries: {}", d->event, d->target.name(),
                                 d->tries, error);
                    return;
                  }
                  ++counts_[{d->event, "retried"}];
                  auto wait = notify_wait(d->tries);
                  spdlog::warn("notify: {} of {} failed ({}), trying again in {} ms", d->event,
                               d->target.name(), error, wait.count());
                  d->timer.expires_after(wait);
                  d->timer.async_wait([this, d](const boost::system::error_code& ec) {
                    if (!ec) attempt(d);
                  });
                });
}

std::vector<Notifier::HookStatus> Notifier::status() const {
  return status_;
}

}  // namespace ptbuild
