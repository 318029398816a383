#include "tests/support/webhook_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>

namespace ptbuild::testing {

namespace {
// Every wait is bounded: a poll of this long, again until stopped.
constexpr int kPollMs = 100;
constexpr auto kReadLimit = std::chrono::seconds(10);

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, kPollMs) > 0;
}
}  // namespace

WebhookServer::WebhookServer(std::vector<int> statuses, bool hang)
    : statuses_(std::move(statuses)), hang_(hang) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("the webhook server cannot listen on loopback");
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

WebhookServer::~WebhookServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::vector<std::string> WebhookServer::bodies() const {
  std::lock_guard lock(mutex_);
  return bodies_;
}

void WebhookServer::serve() {
  while (!stop_) {
    if (!readable(listen_fd_)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    answer(fd);
    ::close(fd);
  }
}

void WebhookServer::answer(int fd) {
  std::string in;
  size_t body_at = std::string::npos, length = 0;
  auto deadline = std::chrono::steady_clock::now() + kReadLimit;
  while (!stop_ && std::chrono::steady_clock::now() < deadline) {
    if (body_at != std::string::npos && in.size() >= body_at + length) break;
    if (!readable(fd)) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
    if (body_at == std::string::npos && (body_at = in.find("\r\n\r\n")) != std::string::npos) {
      body_at += 4;
      size_t at = in.find("Content-Length: ");
      if (at == std::string::npos) at = in.find("content-length: ");
      if (at != std::string::npos) length = std::stoul(in.substr(at + 16));
    }
  }
  if (body_at == std::string::npos) return;
  size_t index;
  {
    std::lock_guard lock(mutex_);
    bodies_.push_back(in.substr(body_at, length));
    index = bodies_.size() - 1;
  }
  if (hang_) {
    ++holding_;
    while (!stop_) {  // until the test ends, or the client gives up and closes
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, kPollMs) > 0) {
        char buf[256];
        if (::read(fd, buf, sizeof buf) <= 0) break;
      }
    }
    --holding_;
    return;
  }
  int status = index < statuses_.size() ? statuses_[index] : 200;
  std::string text = status == 200 ? "ok" : "no";
  std::string reply = "HTTP/1.1 " + std::to_string(status) + " " + (status == 200 ? "OK" : "Error") +
                      "\r\nContent-Length: " + std::to_string(text.size()) + "\r\nConnection: close\r\n\r\n" +
                      text;
  ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
}

}  // namespace ptbuild::testing
