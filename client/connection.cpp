#include "client/connection.h"

#include <grp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <iostream>

#include "core/protocol.h"

namespace ptbuild::client {

int Connection::reply_timeout_ms() {
  if (const char* env = std::getenv("PTBUILD_TIMEOUT"); env && *env) {
    char* end = nullptr;
    long seconds = std::strtol(env, &end, 10);
    if (end && *end == '\0' && seconds > 0 && seconds < 86'400) return static_cast<int>(seconds * 1000);
  }
  return 60'000;
}

Connection::Connection(const std::string& socket_path) : path_(socket_path) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path))
    throw Unreachable{"socket path " + socket_path + " is too long"};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    std::string why = std::strerror(err);
    if (err == EACCES) {
      struct stat st {};
      group* grp = ::stat(socket_path.c_str(), &st) == 0 ? ::getgrgid(st.st_gid) : nullptr;
      throw Unreachable{"cannot reach ptbuildd at " + socket_path + ": " + why +
                        " (only root, ptbuildd's user and members of its admin group" +
                        (grp ? " '" + std::string(grp->gr_name) + "'" : "") +
                        " may use it: ask to be added)"};
    }
    throw Unreachable{"cannot reach ptbuildd at " + socket_path + ": " + why +
                      " (is the daemon running? set the socket with --socket or PTBUILD_SOCKET)"};
  }
  std::string hello = protocol::hello("ptbuild").dump() + "\n";
  if (::send(fd_, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size()))
    throw Unreachable{"ptbuildd at " + socket_path + " closed the connection"};
  auto first = next(reply_timeout_ms());
  if (!first && timed_out_)
    throw Unreachable{
        "no answer from " + socket_path + " within " + std::to_string(reply_timeout_ms() / 1000) +
        " s: the daemon is stuck, or something else listens there (PTBUILD_TIMEOUT sets the wait)"};
  if (first && first->is_object() && first->value("ok", true) == false)  // refused: too many clients
    throw Unreachable{"ptbuildd at " + socket_path + " refused the connection: " +
                      first->value("/error/message"_json_pointer, std::string("no reason given"))};
  if (!first || !first->is_object() || !first->contains("hello"))
    throw Unreachable{"no ptbuildd hello on " + socket_path};
  hello_ = *first;
  if (hello_.value("protocol", 0) != protocol::kVersion)
    std::cerr << "ptbuild: warning: the daemon speaks protocol " << hello_.value("protocol", 0)
              << ", this client " << protocol::kVersion << "\n";
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

int64_t Connection::send(const protocol::OpSpec& op, const nlohmann::json& args) {
  int64_t id = next_id_++;
  std::string line = nlohmann::json{{"id", id}, {"op", op.name}, {"args", args}}.dump() + "\n";
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Unreachable{"lost the connection to ptbuildd at " + path_};
    off += static_cast<size_t>(n);
  }
  return id;
}

nlohmann::json Connection::call(const protocol::OpSpec& op, const nlohmann::json& args, int timeout_ms,
                                const std::function<void(const nlohmann::json&)>& on_event) {
  int64_t id = send(op, args);
  while (auto reply = next(timeout_ms)) {
    if (!reply->is_object() || reply->value("id", int64_t{-1}) != id) continue;
    if (reply->contains("event")) {
      if (on_event) on_event(*reply);
      continue;
    }
    if (reply->value("ok", false)) return (*reply)["result"];
    const auto& err = (*reply)["error"];
    throw RemoteError{err.value("code", "error"), err.value("message", "")};
  }
  if (timed_out_)
    throw Unreachable{"ptbuildd at " + path_ + " did not answer '" + std::string(op.name) + "' within " +
                      std::to_string(timeout_ms / 1000) + " s (PTBUILD_TIMEOUT sets the wait)"};
  throw Unreachable{"ptbuildd at " + path_ + " closed the connection before answering"};
}

std::optional<nlohmann::json> Connection::next(int timeout_ms) {
  while (auto line = read_line(timeout_ms)) {
    auto j = nlohmann::json::parse(*line, nullptr, false);
    if (!j.is_discarded()) return j;
  }
  return std::nullopt;
}

std::optional<std::string> Connection::read_line(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  timed_out_ = false;
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (timeout_ms >= 0) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) {
        timed_out_ = true;
        return std::nullopt;
      }
    }
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace ptbuild::client
