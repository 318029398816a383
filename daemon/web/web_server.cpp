#include "daemon/web/web_server.h"

#include <algorithm>
#include <list>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "daemon/server/queued_channel.h"

namespace ptbuild {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

// The dashboard, compiled in (daemon/web/assets).
constexpr std::string_view kIndexHtml =
#include "web_index.inc"
    ;
constexpr std::string_view kAppJs =
#include "web_app_js.inc"
    ;
constexpr std::string_view kAppCss =
#include "web_app_css.inc"
    ;

constexpr size_t kMaxHeader = 8 * 1024;  // a browser sends ~1 KiB
constexpr size_t kMaxBody = 4 * 1024;    // GET has none; enough to read a refused POST's
constexpr size_t kMaxConnections = 256;
constexpr size_t kMaxPerAddress = 64;  // one client address may not take the others' connections
constexpr size_t kMaxEventBacklog = 4 * 1024 * 1024;  // one page's unread events
constexpr size_t kEventBudget = 64 * 1024 * 1024;     // all pages' unread events together
constexpr auto kIdle = std::chrono::seconds(60);      // to write a response
// To read a request, headers and all: a browser sends one at once; a client that trickles bytes
// (slowloris) holds a connection no longer than this.
constexpr auto kRequestDeadline = std::chrono::seconds(10);
// An event stream with nothing to say sends a comment this often: a proxy keeps it open, and a
// page that went away is found by the failing write.
constexpr auto kHeartbeat = std::chrono::seconds(15);
// An op that answers off the loop (changes, provenance, bisect_status) has this long.
constexpr auto kLaterReply = std::chrono::minutes(2);

using protocol::json_text;

http::status status_of(const std::string& code) {
  namespace c = protocol::code;
  if (code == c::kNotFound || code == c::kUnknownTarget || code == c::kUnknownOp)
    return http::status::not_found;
  if (code == c::kPermissionDenied) return http::status::forbidden;
  if (code == c::kConflict) return http::status::conflict;
  if (code == c::kInternal) return http::status::internal_server_error;
  return http::status::bad_request;
}

using Response = http::response<http::string_body>;

Response make_response(http::status status, std::string_view type, std::string body) {
  Response res{status, 11};
  res.set(http::field::server, "ptbuildd/" PTBUILD_VERSION);
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Content-Security-Policy", "default-src 'self'");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response refusal(http::status status, const std::string& message) {
  Response res = make_response(status, "text/plain; charset=utf-8", message + "\n");
  if (status == http::status::method_not_allowed) res.set(http::field::allow, "GET, HEAD");
  return res;
}

// One browser connection: requests one after another (keep-alive), or one event stream.
class Connection : public QueuedChannel, public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const Dispatch& dispatch, const std::function<std::string()>& metrics,
             std::shared_ptr<const web::HostPolicy> hosts, std::shared_ptr<size_t> event_total)
      : QueuedChannel(socket.get_executor(), std::move(event_total), kMaxEventBacklog, kEventBudget),
        stream_(std::move(socket)),
        dispatch_(dispatch),
        metrics_(metrics),
        hosts_(std::move(hosts)),
        heartbeat_(stream_.get_executor()),
        later_(stream_.get_executor()) {
    boost::system::error_code no_peer;
    peer_ = stream_.socket().remote_endpoint(no_peer).address();
  }

  void start() { asio::co_spawn(stream_.get_executor(), serve(shared_from_this()), asio::detached); }

  // Waiting for a request (its first, or the next on a kept-alive connection): what the server
  // closes first when every connection is taken, so that a flood never locks a page out.
  bool waiting_for_request() const { return waiting_for_request_; }
  bool streaming() const { return streaming_; }
  const asio::ip::address& peer() const { return peer_; }

  // Channel: the lines of an event stream, each the socket's line as one server-sent event.
  // Or the reply of an /api op that answered later: the request waiting for it takes it.
  void send(const nlohmann::json& line) override {
    if (awaiting_reply_) {
      later_reply_ = line;
      later_.cancel();
      return;
    }
    if (line.contains("ok")) finished_ = true;  // the op's reply: the stream ends after it
    send_event(json_text(line));
  }

 private:
  awaitable<void> serve([[maybe_unused]] std::shared_ptr<Connection> self) {
    beast::flat_buffer buffer;
    while (is_open()) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeader);
      parser.body_limit(kMaxBody);
      stream_.expires_after(kRequestDeadline);
      waiting_for_request_ = true;
      auto [ec, n] = co_await http::async_read(stream_, buffer, parser, use_nothrow);
      waiting_for_request_ = false;
      if (ec) {
        if (ec == http::error::header_limit)
          co_await write(refusal(http::status::request_header_fields_too_large,
                                 "request headers longer than " + std::to_string(kMaxHeader) + " bytes"),
                         false);
        else if (ec == http::error::body_limit)
          co_await write(refusal(http::status::payload_too_large, "the dashboard takes no request body"),
                         false);
        else if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message)
          co_await write(refusal(http::status::bad_request, "malformed request: " + ec.message()), false);
        break;
      }
      const auto& req = parser.get();
      if (std::string why = misdirected(req); !why.empty()) {
        co_await write(refusal(http::status::misdirected_request, why), false);
        break;
      }
      web::Route route = web::route(req.method_string(), req.target());
      if (route.kind == web::RouteKind::events && req.method() == http::verb::head) {
        // The stream's headers and nothing more: a HEAD must not stream forever.
        Response head = make_response(http::status::ok, "text/event-stream", "");
        head.content_length(boost::none);
        co_await write(std::move(head), false);
        break;
      }
      if (route.kind == web::RouteKind::events) {
        co_await stream_events(route);
        break;
      }
      Response res;
      if (route.kind == web::RouteKind::api)  // not in a ?: — GCC 12 miscompiles co_await there
        res = co_await answer_api(route);
      else
        res = answer_or_500(route);
      if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays
      if (!co_await write(std::move(res), req.keep_alive())) break;
    }
    close();
  }

  // Why a request is not answered for the host it names ("" when it is): see web::host_allowed.
  // HTTP/1.0 may leave Host out; a browser never does.
  std::string misdirected(const http::request<http::string_body>& req) const {
    auto host = req.find(http::field::host);
    if (host == req.end()) return req.version() >= 11 ? "a request without a Host header" : "";
    if (web::host_allowed(host->value(), *hosts_)) return "";
    return "ptbuildd does not answer for the host '" + std::string(host->value()) +
           "' (a name of this dashboard goes in [web] hosts)";
  }

  awaitable<bool> write(Response res, bool keep_alive) {
    res.keep_alive(keep_alive);
    stream_.expires_after(kIdle);
    auto [ec, n] = co_await http::async_write(stream_, res, use_nothrow);
    co_return !ec && keep_alive;
  }

  Response answer_or_500(const web::Route& route) {
    try {
      return answer(route);
    } catch (const std::exception& e) {  // the metrics' queries, say: the page gets the reason
      spdlog::error("web: {} failed: {}", route.name.empty() ? "a page" : route.name, e.what());
      return refusal(http::status::internal_server_error, std::string("ptbuildd: ") + e.what());
    }
  }

  Response answer(const web::Route& route) {
    switch (route.kind) {
      case web::RouteKind::page:
        return make_response(http::status::ok, "text/html; charset=utf-8", std::string(kIndexHtml));
      case web::RouteKind::asset:
        return route.name == "app.js"
                   ? make_response(http::status::ok, "text/javascript; charset=utf-8", std::string(kAppJs))
                   : make_response(http::status::ok, "text/css; charset=utf-8", std::string(kAppCss));
      case web::RouteKind::metrics:
        return make_response(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", metrics_());
      case web::RouteKind::api:
        return call_op(route);
      case web::RouteKind::events:
      case web::RouteKind::refused:
        break;
    }
    return refusal(static_cast<http::status>(route.status), route.message);
  }

  // An /api op, whether it answers at once or later through send() (off the loop).
  awaitable<Response> answer_api(const web::Route& route) {
    awaiting_reply_ = true;
    later_reply_.reset();
    Response res = call_op(route);
    if (!answers_later_) {
      awaiting_reply_ = false;
      co_return res;
    }
    answers_later_ = false;
    if (!later_reply_) {
      later_.expires_after(kLaterReply);
      co_await later_.async_wait(use_nothrow);
    }
    awaiting_reply_ = false;
    auto error = [](http::status status, const std::string& code, const std::string& message) {
      return make_response(status, "application/json",
                           json_text({{"error", {{"code", code}, {"message", message}}}}) + "\n");
    };
    if (!later_reply_)
      co_return error(http::status::gateway_timeout, protocol::code::kInternal, "no answer in time");
    const nlohmann::json& reply = *later_reply_;
    if (reply.value("ok", false))
      co_return make_response(http::status::ok, "application/json", json_text(reply["result"]) + "\n");
    std::string code = reply["error"].value("code", protocol::code::kInternal);
    co_return error(status_of(code), code, reply["error"].value("message", ""));
  }

  Response call_op(const web::Route& route) {
    auto error = [](http::status status, const std::string& code, const std::string& message) {
      return make_response(status, "application/json",
                           json_text({{"error", {{"code", code}, {"message", message}}}}) + "\n");
    };
    try {
      auto result = dispatch_(protocol::Request{1, route.name, route.args}, Caller{}, shared_from_this());
      if (!result) {
        answers_later_ = true;  // answer_api waits for it
        return error(http::status::internal_server_error, protocol::code::kInternal, "no answer");
      }
      return make_response(http::status::ok, "application/json", result_text(*result) + "\n");
    } catch (const OpError& e) {
      return error(status_of(e.code), e.code, e.message);
    } catch (const protocol::ArgError& e) {
      return error(http::status::bad_request, protocol::code::kBadRequest, e.message);
    } catch (const std::exception& e) {
      spdlog::error("web: op '{}' failed: {}", route.name, e.what());
      return error(http::status::internal_server_error, protocol::code::kInternal, e.what());
    }
  }

  // An op that answers with events (log, wait, watch), as text/event-stream: every line the
  // socket would send, one event each, until the op's reply or until the page goes away.
  awaitable<void> stream_events(const web::Route& route) {
    stream_.expires_never();
    streaming_ = true;
    enqueue(
        [] {
          return std::string(
              "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
              "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n");
        },
        [](size_t, size_t) {
          spdlog::warn("web pages hold too many unread events: an event stream refused");
        });
    asio::co_spawn(stream_.get_executor(), writer(shared_from_this()), asio::detached);
    asio::co_spawn(stream_.get_executor(), heartbeat(shared_from_this()), asio::detached);
    protocol::Request req{1, route.name, route.args};
    try {
      if (auto result = dispatch_(req, Caller{}, shared_from_this())) {
        finished_ = true;  // the op's reply: the stream ends after it
        send_event(protocol::ok_reply_text(req.id, result_text(*result)));
      }
    } catch (const OpError& e) {
      send(protocol::error_reply(req.id, e.code, e.message));
    } catch (const protocol::ArgError& e) {
      send(protocol::error_reply(req.id, protocol::code::kBadRequest, e.message));
    } catch (const std::exception& e) {
      spdlog::error("web: op '{}' failed: {}", route.name, e.what());
      send(protocol::error_reply(req.id, protocol::code::kInternal, e.what()));
    }
    // Whatever the page sends now is ignored; its leaving (EOF, reset) ends the stream.
    char ignored[512];
    while (is_open()) {
      auto [ec, n] = co_await stream_.socket().async_read_some(asio::buffer(ignored), use_nothrow);
      if (ec) break;
    }
    close();
  }

  awaitable<void> heartbeat([[maybe_unused]] std::shared_ptr<Connection> self) {
    while (is_open() && !finished_) {
      heartbeat_.expires_after(kHeartbeat);
      co_await heartbeat_.async_wait(use_nothrow);
      if (is_open() && !finished_)
        enqueue([] { return std::string(": heartbeat\n\n"); }, [](size_t, size_t) {});
    }
  }

  awaitable<void> writer([[maybe_unused]] std::shared_ptr<Connection> self) {
    co_await write_queued(stream_.socket(), [this] { return finished_; });
  }

  // One line the socket would send, as one server-sent event.
  void send_event(const std::string& line) {
    enqueue([&] { return "data: " + line + "\n\n"; },
            [](size_t unread, size_t all) {
              spdlog::warn(
                  "a web page reads its events too slowly ({} bytes unread, {} for all pages); closing it",
                  unread, all);
            });
  }

  void close_socket() override {
    heartbeat_.cancel();  // a closed stream is let go now, not at its next heartbeat
    boost::system::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  Dispatch dispatch_;
  std::function<std::string()> metrics_;
  std::shared_ptr<const web::HostPolicy> hosts_;
  bool finished_ = false;
  bool waiting_for_request_ = false;
  bool streaming_ = false;
  asio::ip::address peer_;
  asio::steady_timer heartbeat_;
  asio::steady_timer later_;  // an /api op's reply that comes later
  bool awaiting_reply_ = false, answers_later_ = false;
  std::optional<nlohmann::json> later_reply_;
};

}  // namespace

struct WebServer::Impl {
  Impl(asio::io_context& io, Dispatch d, std::function<std::string()> m)
      : acceptor(io), dispatch(std::move(d)), metrics(std::move(m)) {}
  tcp::acceptor acceptor;
  Dispatch dispatch;
  std::function<std::string()> metrics;
  std::shared_ptr<const web::HostPolicy> hosts = std::make_shared<web::HostPolicy>();
  std::shared_ptr<size_t> event_total = std::make_shared<size_t>(0);
  std::list<std::weak_ptr<Connection>> connections;

  // Every connection is taken (of all, or of one client address): the oldest that waits for a
  // request goes (an idle keep-alive, or one trickling its headers), else the oldest event stream
  // (a page reconnects its stream by itself). A flood of either kind never keeps a fresh page
  // load out, and a flood from one address closes only its own connections.
  bool make_room(const std::optional<asio::ip::address>& of) {
    for (bool streams : {false, true})
      for (const auto& w : connections)
        if (auto c = w.lock(); c && c->is_open() && (!of || c->peer() == *of) &&
                               (streams ? c->streaming() : c->waiting_for_request())) {
          c->close();
          return true;
        }
    return false;
  }

  awaitable<void> accept_loop([[maybe_unused]] std::shared_ptr<Impl> self) {
    asio::steady_timer pause(acceptor.get_executor());
    while (acceptor.is_open()) {
      auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
        // Out of descriptors, say: wait instead of spinning (the socket server says so in the log).
        pause.expires_after(std::chrono::milliseconds(500));
        co_await pause.async_wait(use_nothrow);
        continue;
      }
      connections.remove_if([](const std::weak_ptr<Connection>& w) {
        auto c = w.lock();
        return !c || !c->is_open();
      });
      boost::system::error_code no_peer;
      asio::ip::address peer = socket.remote_endpoint(no_peer).address();
      size_t from_peer = std::count_if(connections.begin(), connections.end(), [&](const auto& w) {
        auto c = w.lock();
        return c && c->peer() == peer;
      });
      bool room = from_peer >= kMaxPerAddress             ? make_room(peer)
                  : connections.size() >= kMaxConnections ? make_room(std::nullopt)
                                                          : true;
      if (!room) {
        boost::system::error_code ignored;
        socket.close(ignored);  // a browser retries; nothing is held for it
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(asio::socket_base::keep_alive(true), ignored);  // finds pages whose network vanished
      auto c = std::make_shared<Connection>(std::move(socket), dispatch, metrics, hosts, event_total);
      connections.push_back(c);
      c->start();
    }
  }
};

WebServer::WebServer(asio::io_context& io, Dispatch dispatch, std::function<std::string()> metrics)
    : impl_(std::make_shared<Impl>(io, std::move(dispatch), std::move(metrics))) {}

WebServer::~WebServer() {
  stop();
}

std::string WebServer::listen(const web::ListenAddress& at, std::vector<std::string> extra_names) {
  impl_->hosts = std::make_shared<web::HostPolicy>(web::HostPolicy{at.host, std::move(extra_names)});
  boost::system::error_code ec;
  auto address = asio::ip::make_address(at.host, ec);
  if (ec) return "'" + at.host + "' is not an IP address";
  tcp::endpoint endpoint(address, at.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    return "cannot listen on " + at.host + ":" + std::to_string(at.port) + ": " + ec.message();
  }
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(impl_), asio::detached);
  return "";
}

uint16_t WebServer::port() const {
  boost::system::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void WebServer::stop() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  for (auto& w : impl_->connections)
    if (auto c = w.lock()) c->close();
  impl_->connections.clear();
}

}  // namespace ptbuild
