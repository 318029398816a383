#include "daemon/server/server.h"

#include <unistd.h>

#include <deque>
#include <list>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "daemon/server/queued_channel.h"
#include "daemon/system.h"

namespace ptbuild {

namespace asio = boost::asio;
using asio::awaitable;
using asio::local::stream_protocol;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

// A client that reads too slowly (say, a stopped `log -f`) is dropped rather than buffered
// without bound.
constexpr size_t kMaxOutbox = 64 * 1024 * 1024;
// All clients together: what the daemon holds for slow readers never passes this.
constexpr size_t kOutboxBudget = 128 * 1024 * 1024;
// Connections at once; more are answered with an error and closed (LimitNOFILE in the unit is
// well above).
constexpr size_t kMaxSessions = 1024;

std::string to_line(const nlohmann::json& j) {
  return protocol::json_text(j) + "\n";
}

class Session : public QueuedChannel, public std::enable_shared_from_this<Session> {
 public:
  Session(stream_protocol::socket socket, Caller caller, Dispatch& dispatch,
          std::shared_ptr<size_t> outbox_total)
      : QueuedChannel(socket.get_executor(), std::move(outbox_total), kMaxOutbox, kOutboxBudget),
        socket_(std::move(socket)),
        caller_(caller),
        dispatch_(dispatch) {}

  void start() {
    send(protocol::hello("ptbuildd"));
    asio::co_spawn(socket_.get_executor(), reader(shared_from_this()), asio::detached);
    asio::co_spawn(socket_.get_executor(), writer(shared_from_this()), asio::detached);
  }

  void send(const nlohmann::json& line) override {
    send_line([&] { return to_line(line); });
  }

 private:
  awaitable<void> reader([[maybe_unused]] std::shared_ptr<Session> self) {
    std::string pending;
    bool discarding = false;  // inside a line that was already refused as too long
    std::vector<char> buf(64 * 1024);
    while (is_open()) {
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf), use_nothrow);
      if (ec) break;
      std::string_view chunk(buf.data(), n);
      size_t start = 0;
      while (is_open()) {
        size_t nl = chunk.find('\n', start);
        std::string_view piece = chunk.substr(start, nl == chunk.npos ? chunk.npos : nl - start);
        if (!discarding) {
          pending.append(piece);
          if (pending.size() > protocol::kMaxLine) {
            send(protocol::error_reply(
                nullptr, protocol::code::kLineTooLong,
                "request line longer than " + std::to_string(protocol::kMaxLine) + " bytes"));
            pending.clear();
            discarding = true;
          }
        }
        if (nl == chunk.npos) break;
        if (!discarding) handle_line(pending);
        discarding = false;
        pending.clear();
        start = nl + 1;
      }
    }
    close();
  }

  awaitable<void> writer([[maybe_unused]] std::shared_ptr<Session> self) {
    co_await write_queued(socket_, [] { return false; });
  }

  template <class MakeLine>
  void send_line(MakeLine&& make_line) {
    enqueue(make_line, [this](size_t unread, size_t all) {
      spdlog::warn(
          "client pid {} reads too slowly ({} bytes unread, {} for all clients); closing its connection",
          caller_.pid, unread, all);
    });
  }

  void close_socket() override {
    boost::system::error_code ignored;
    socket_.shutdown(stream_protocol::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  void handle_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;
    bool first = !seen_first_line_;
    seen_first_line_ = true;
    auto parsed = protocol::parse_request(line);
    if (auto* err = std::get_if<protocol::RequestError>(&parsed)) {
      if (first) {
        // The client's hello: a different protocol version is only logged; its requests are
        // answered (or refused) one by one like any others.
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("hello")) {
          if (j.value("protocol", 0) != protocol::kVersion)
            spdlog::warn("client pid {} speaks protocol {}, we speak {}", caller_.pid, j.value("protocol", 0),
                         protocol::kVersion);
          return;
        }
      }
      send(protocol::error_reply(err->id, err->code, err->message));
      return;
    }
    const auto& req = std::get<protocol::Request>(parsed);
    try {
      if (auto result = dispatch_(req, caller_, shared_from_this()))
        send_line([&] { return protocol::ok_reply_text(req.id, result_text(*result)) + "\n"; });
    } catch (const OpError& e) {
      send(protocol::error_reply(req.id, e.code, e.message));
    } catch (const protocol::ArgError& e) {
      send(protocol::error_reply(req.id, protocol::code::kBadRequest, e.message));
    } catch (const std::exception& e) {
      spdlog::error("op '{}' failed: {}", req.op, e.what());
      send(protocol::error_reply(req.id, protocol::code::kInternal, e.what()));
    }
  }

  stream_protocol::socket socket_;
  Caller caller_;
  Dispatch& dispatch_;
  bool seen_first_line_ = false;
};

}  // namespace

struct Server::Impl {
  Impl(asio::io_context& io, Dispatch d) : acceptor(io), dispatch(std::move(d)) {}
  stream_protocol::acceptor acceptor;
  Dispatch dispatch;
  std::string admin_group;
  std::string path;  // the socket file we created, removed at stop
  std::list<std::weak_ptr<Session>> sessions;
  std::shared_ptr<size_t> outbox_total = std::make_shared<size_t>(0);

  awaitable<void> accept_loop([[maybe_unused]] std::shared_ptr<Impl> self) {
    asio::steady_timer pause(acceptor.get_executor());
    auto rest = std::chrono::milliseconds(0);
    boost::system::error_code told;  // the failure last logged, while accepting fails
    while (acceptor.is_open()) {
      auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
        // Out of file descriptors (or another error that does not pass by itself at once): wait
        // before trying again instead of spinning, 50 ms doubling up to 2 s, and say so once
        // for each reason.
        if (ec != told) spdlog::warn("accept failed: {}; waiting before accepting again", ec.message());
        told = ec;
        rest = std::min(std::chrono::milliseconds(2000), std::max(std::chrono::milliseconds(50), rest * 2));
        pause.expires_after(rest);
        co_await pause.async_wait(use_nothrow);
        continue;
      }
      if (rest.count() != 0) spdlog::info("accepting connections again");
      rest = std::chrono::milliseconds(0);
      told.clear();
      Caller caller;
      if (auto cred = peer_credentials(socket.native_handle())) {
        caller.pid = cred->pid;
        caller.uid = cred->uid;
        caller.may_change = may_change(cred->uid, admin_group);
      }
      sessions.remove_if([](const std::weak_ptr<Session>& w) {
        auto s = w.lock();
        return !s || !s->is_open();
      });
      if (sessions.size() >= kMaxSessions) {
        std::string refusal = to_line(
            protocol::error_reply(nullptr, protocol::code::kBusy,
                                  "too many connections (" + std::to_string(kMaxSessions) + "); try again"));
        boost::system::error_code ignored;
        socket.non_blocking(true, ignored);
        socket.write_some(asio::buffer(refusal), ignored);
        continue;  // closed as it goes out of scope
      }
      auto session = std::make_shared<Session>(std::move(socket), caller, dispatch, outbox_total);
      sessions.push_back(session);
      session->start();
    }
  }
};

std::string result_text(const OpResult& result) {
  if (const auto* written = std::get_if<ResultText>(&result)) return *written->text;
  return protocol::json_text(std::get<nlohmann::json>(result));
}

Server::Server(asio::io_context& io, Dispatch dispatch)
    : impl_(std::make_shared<Impl>(io, std::move(dispatch))) {}

Server::~Server() {
  stop();
}

std::string Server::listen(const std::string& path, const std::string& admin_group) {
  if (std::string err = prepare_socket_path(path); !err.empty()) return err;
  impl_->admin_group = admin_group;
  impl_->path = path;
  boost::system::error_code ec;
  stream_protocol::endpoint endpoint(path);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "cannot listen on " + path + ": " + ec.message();
  if (std::string err = restrict_socket(path, admin_group); !err.empty()) spdlog::warn("{}", err);
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(impl_), asio::detached);
  return "";
}

void Server::set_admin_group(const std::string& group) {
  impl_->admin_group = group;
  if (!impl_->path.empty())
    if (std::string err = restrict_socket(impl_->path, group); !err.empty()) spdlog::warn("{}", err);
}

void Server::stop() {
  boost::system::error_code ignored;
  if (impl_->acceptor.is_open() && !impl_->path.empty()) ::unlink(impl_->path.c_str());
  impl_->acceptor.close(ignored);
  for (auto& weak : impl_->sessions)
    if (auto s = weak.lock()) s->close();
  impl_->sessions.clear();
}

}  // namespace ptbuild
